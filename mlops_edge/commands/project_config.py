"""`mlops-edge.toml`: the defaults a project repeats, fed to click as its ``default_map``.

Like SAM CLI's ``samconfig.toml``: a ``[default]`` table with the keys many commands share
(profile, region, state dir, devices, dataset, output, state machine) and, optionally, one table
per command (``[run]``, ``[local.up]``, ``[executions.list]``) with that command's own options.
Options given on the command line always win, because click consults ``default_map`` only for
options that were not given. The file is found in the current directory or a parent (stopping at
the git root or the filesystem root), or named by ``--config-file``.

Only ``tomllib`` and ``click`` are imported here: the file is read before every command, so
``mlops-edge --help`` must stay instant.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

FILE_NAME = "mlops-edge.toml"
#: Keys of the group itself (``mlops-edge --profile --region``).
GLOBAL_KEYS = ("profile", "region")
#: ``[default]`` key -> the parameter names it sets on every command that has one of them.
#: ``dataset`` is ``run --demo`` and ``demo --dataset``; ``state_machine`` is ``--state-machine``.
SHARED_KEYS: dict[str, tuple[str, ...]] = {
    "state_dir": ("state_dir",),
    "devices": ("devices",),
    "dataset": ("demo", "names"),
    "output": ("output",),
    "state_machine": ("machine",),
}


class ConfigError(click.ClickException):
    """A config file that cannot be used: names the file and the key; exit 1, no traceback."""


@dataclass(frozen=True)
class ProjectConfig:
    """One parsed ``mlops-edge.toml``: its path, its ``[default]`` table and its command tables."""

    path: Path
    default: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, Any] = field(default_factory=dict)

    def group_defaults(self) -> dict[str, Any]:
        """The group's own options (profile, region) from ``[default]``."""
        return {key: self.default[key] for key in GLOBAL_KEYS if key in self.default}

    def command_defaults(self, command: click.Command, path: tuple[str, ...]) -> dict[str, Any]:
        """The ``default_map`` of one command (sub-commands nested), or a ConfigError."""
        table = _table_at(self.commands, path)
        return _defaults_for(self, command, path, table)


def find(start: Path) -> Path | None:
    """``mlops-edge.toml`` in ``start`` or a parent, not above the git root (a ``.git`` entry)."""
    for folder in (start, *start.parents):
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def load(path: Path, commands: set[str]) -> ProjectConfig:
    """Parse and check the file: bad TOML, unknown tables and unknown ``[default]`` keys are errors.

    A command table's keys are checked when that command runs (``command_defaults``), since only
    then is the command's module imported.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    default = document.pop("default", {})
    if not isinstance(default, dict):
        raise ConfigError(f"{path}: 'default' must be a table ([default])")
    default = {_key(k): v for k, v in default.items()}
    known = (*GLOBAL_KEYS, *SHARED_KEYS)
    for key, value in default.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{key}' in [default] (known: {', '.join(known)})")
        if isinstance(value, dict):
            raise ConfigError(f"{path}: [default] {key} must be a value, not a table")
        if key in GLOBAL_KEYS and not isinstance(value, str):
            raise ConfigError(f'{path}: [default] {key} must be a string, e.g. {key} = "..."')
    for name, table in document.items():
        if name not in commands:
            raise ConfigError(
                f"{path}: unknown table [{name}]: tables are [default] or a command ({', '.join(sorted(commands))})"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: '{name}' must be a table ([{name}])")
    return ProjectConfig(path=path, default=default, commands=document)


def _key(name: str) -> str:
    return name.replace("-", "_")


def _table_at(commands: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    table: Any = commands
    for part in path:
        table = table.get(part, {}) if isinstance(table, dict) else {}
    return table if isinstance(table, dict) else {}


def _names_of(param: click.Parameter) -> set[str]:
    """A parameter's names as a file may spell them: its name and its long flags, in - or _ form."""
    names = {param.name or ""}
    for opt in (*param.opts, *param.secondary_opts):
        if opt.startswith("--"):
            names.add(_key(opt[2:]))
    return names - {""}


def _defaults_for(
    config: ProjectConfig, command: click.Command, path: tuple[str, ...], table: dict[str, Any]
) -> dict[str, Any]:
    params = {name: p for p in command.params if isinstance(p, click.Option) for name in _names_of(p)}
    result: dict[str, Any] = {}
    for key, names in SHARED_KEYS.items():
        if key in config.default:
            for p in command.params:
                # `output` is shared by options with different choices (table|json, text|jsonl)
                if p.name in names and (key != "output" or _takes(p, config.default[key])):
                    value = _shaped(p, config.default[key], config.path.parent)
                    result[p.name] = _checked(config.path, "default", key, p, value)
    subcommands = command.commands if isinstance(command, click.Group) else {}
    where = ".".join(path)
    for raw_key, value in table.items():
        key = _key(raw_key)
        if raw_key in subcommands and isinstance(value, dict):
            continue
        if key not in params:
            options = sorted(f"--{o[2:]}" for p in set(params.values()) for o in p.opts if o.startswith("--"))
            raise ConfigError(
                f"{config.path}: unknown key '{raw_key}' in [{where}]: `mlops-edge {' '.join(path)}` "
                f"has no such option (options: {', '.join(options) or 'none'})"
            )
        param = params[key]
        value = _checked(config.path, where, raw_key, param, _shaped(param, value, config.path.parent))
        result[param.name or key] = value
    for name, sub in subcommands.items():
        result[name] = _defaults_for(config, sub, (*path, name), _table_at(table, (name,)))
    return result


def _checked(path: Path, table: str, key: str, param: click.Parameter, value: Any) -> Any:
    """The value as the option would convert it, or a ConfigError naming the file, table and key
    (click's own message would name only the option, and blame the command line)."""
    try:
        param.type_cast_value(click.Context(click.Command("mlops-edge")), value)
    except click.BadParameter as exc:
        raise ConfigError(f"{path}: [{table}] {key} = {value!r}: {exc.message}") from exc
    return value


def _takes(param: click.Parameter, value: Any) -> bool:
    """Whether a shared value fits this command's option: ``output = "json"`` is for the listings'
    ``--output table|json``, not for ``mqtt sub --output text|jsonl``."""
    if isinstance(param.type, click.Choice):
        values = value if isinstance(value, list) else [value]
        return all(v in param.type.choices for v in values)
    return True


def _shaped(param: click.Parameter, value: Any, base: Path) -> Any:
    """A value as the option takes it: a scalar for a repeatable option becomes a one-item list
    (``dataset = "wine"``); a relative path is relative to the file's folder, not to wherever the
    command runs, so ``state_dir = ".local"`` means the project's one from any sub-folder."""
    if isinstance(param.type, click.Path) and isinstance(value, str) and not Path(value).is_absolute():
        value = str(base / value)
    if param.multiple and not isinstance(value, list):
        return [value]
    return value
