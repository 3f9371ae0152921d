"""Entry point of `mlops-edge`.

Sub-commands are imported only when invoked, so `mlops-edge --help` stays instant even though the
commands behind it pull in xgboost, onnxruntime, moto or the CDK. The group's own options are the
AWS CLI's habits: ``--profile``/``--region`` (applied to the commands that talk to AWS) and a
project config, ``mlops-edge.toml``, whose values become click's ``default_map``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

# name -> (module under mlops_edge.commands, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "run", "Run the whole pipeline end to end on the embedded local cloud."),
    "train": ("ml", "train", "Train an XGBoost model under the SageMaker script-mode contract."),
    "export": ("ml", "export", "Export a trained model to ONNX, prove parity, write manifest + golden set."),
    "predict": ("ml", "predict", "Predict with an exported model directory using the edge engine."),
    "demo": ("ml", "demo", "Train, export, prove parity and predict on the bundled demo datasets."),
    "local": ("local", "local", "The embedded local cloud: up [--detach], status, stop, logs, env, exec."),
    "device": ("device", "device", "Run a simulated Greengrass core device."),
    "execute": ("aws", "execute", "Start an execution of the deployed state machine."),
    "executions": ("aws", "executions", "List and inspect state machine executions."),
    "devices": ("aws", "devices", "List Greengrass core devices and their components."),
    "logs": ("aws", "logs", "Print a pipeline Lambda function's CloudWatch logs."),
    "mqtt": ("mqtt", "mqtt", "MQTT test client: subscribe and publish."),
    "infer": ("mqtt", "infer", "Send one inference request to a device and print its answer."),
    "component": ("component", "component", "Build a working-tree component; deploy it to one device."),
    "monitor": ("monitor", "monitor", "Drift per feature, fleet and each device, vs the training data."),
    "console": ("console", "console", "Serve the local web console: executions, models, devices, MQTT."),
    "completion": ("completion", "completion", "Print the shell completion script (bash, zsh or fish)."),
}
#: The commands that call AWS through boto3: ``--profile``/``--region`` apply to them.
AWS_COMMANDS = frozenset(
    {"execute", "executions", "devices", "logs", "monitor", "console", "train", "component"}
)
_CONFIG = "mlops_edge.config"
_SUB_ARGS = "mlops_edge.sub_args"


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, _ = spec
        try:
            module = importlib.import_module(f"mlops_edge.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mlops_edge.commands.{module_name}":
                return _unavailable(cmd_name)
            raise
        return getattr(module, attr)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Also give the command its ``default_map``: mlops-edge.toml's values and the global region."""
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_SUB_ARGS] = rest
        if name is None or command is None:
            return name, command, rest
        config = ctx.meta.get(_CONFIG)
        defaults: dict[str, Any] = config.command_defaults(command, (name,)) if config else {}
        region = ctx.params.get("region")
        if region:
            _region_default(command, defaults, region)  # `device run --region`: a core's own region
        ctx.default_map = {**(ctx.default_map or {}), name: defaults}
        return name, command, rest

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Command names from the table, without importing every command's module (a shell waits)."""
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=help_) for name, (_, _, help_) in COMMANDS.items()]
        found = [item for item in items if item.value.startswith(incomplete)]
        return found + click.Command.shell_complete(self, ctx, incomplete)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _region_default(command: click.Command, defaults: dict[str, Any], region: str) -> None:
    """The global region as the default of every ``--region`` of a command and its sub-commands."""
    if any(p.name == "region" for p in command.params):
        defaults.setdefault("region", region)
    for name, sub in getattr(command, "commands", {}).items():
        _region_default(sub, defaults.setdefault(name, {}), region)


def _unavailable(name: str) -> click.Command:
    @click.command(name=name, help=COMMANDS[name][2])
    def _cmd() -> None:
        raise click.ClickException(f"'{name}' is not available in this build yet")

    return _cmd


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Eager: read mlops-edge.toml before the other options, so its values are their defaults."""
    from mlops_edge.commands import project_config

    path = value or project_config.find(Path.cwd())
    if path is None:
        return
    config = project_config.load(path, set(COMMANDS))
    ctx.meta[_CONFIG] = config
    ctx.default_map = {**(ctx.default_map or {}), **config.group_defaults()}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--profile",
    metavar="NAME",
    help="Named AWS profile for the commands that talk to AWS (as the AWS CLI; default $AWS_PROFILE).",
)
@click.option(
    "--region", metavar="REGION", help="AWS Region for the commands that talk to AWS (default $AWS_REGION)."
)
@click.option(
    "--config-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="Project defaults (default: mlops-edge.toml here or in a parent, up to the git root).",
)
@click.version_option(package_name="mlops-edge")
@click.pass_context
def main(ctx: click.Context, profile: str | None, region: str | None) -> None:
    """mlops-edge: XGBoost to ONNX to Greengrass V2 edge devices, verified over MQTT.

    --profile and --region apply to the commands that talk to AWS (execute, executions, devices,
    logs, monitor, console, train --sagemaker, component); values in mlops-edge.toml are defaults that
    options on the command line override.
    """
    command = ctx.invoked_subcommand
    if command not in AWS_COMMANDS:
        given = [
            f"--{n}"
            for n in ("profile", "region")
            if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE
        ]
        if command == "device":
            given = [g for g in given if g != "--region"]  # it sets `device run --region`
        if given:
            aws = ", ".join(sorted(AWS_COMMANDS))
            raise click.UsageError(
                f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to the commands that talk to AWS ({aws}); "
                f"`{command}` does not use an AWS account"
            )
        return
    if any(arg in ("-h", "--help") for arg in ctx.meta.get(_SUB_ARGS, [])):
        return  # help needs no session (and no boto3 import)
    from mlops_edge.commands.common import use_aws

    use_aws(profile, region)


if __name__ == "__main__":
    main()
