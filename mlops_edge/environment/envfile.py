"""`<state dir>/local.json`: which process runs the local cloud of a state directory, and the
environment that reaches it; and the three ways a user gets that environment without keeping it.

Issue 14: `source .local/env.sh` exported static credentials and ``AWS_ENDPOINT_URL`` into a shell
with no way back, so a later `cdk deploy` there silently talked to the local cloud. Instead:

- ``mlops-edge local exec -- CMD`` runs one command with the environment (:func:`exec_environ`);
  the caller's shell never changes. This is the `awslocal` habit.
- ``eval "$(mlops-edge local env)"`` exports it (:func:`shell_exports`) *and* remembers what each
  variable was before, in ``MLOPS_EDGE_LOCAL_RESTORE``; ``eval "$(mlops-edge local env --unset)"``
  (:func:`shell_unset`) puts the shell back as it was, the user's own ``AWS_PROFILE`` included.
- ``<state dir>/aws-config`` (``AWS_CONFIG_FILE``) holds a named profile, ``mlops-edge-local``,
  with ``endpoint_url``, so ``aws --profile mlops-edge-local`` and boto3 work without any
  variable but that file.

The record is written by whoever holds the local cloud (`local up`, foreground or detached, and
`run --keep`) once it is usable, and trusted only while that PID is the same process
(:mod:`processes`): a stale record is a stopped cloud, not an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_edge.environment import processes

#: The local cloud's own state lives here, under the user's state directory.
CLOUD_SUBDIR = "cloud"
#: Part of the environment once a pipeline is deployed, so every command finds the local state
#: machine without a lookup by name.
STATE_MACHINE_ENV = "MLOPS_EDGE_STATE_MACHINE_ARN"
#: The record: who runs the local cloud of this state directory and how to reach it.
RECORD = "local.json"
#: ``AWS_CONFIG_FILE`` of the local cloud: one profile, :data:`PROFILE`, with its ``endpoint_url``.
AWS_CONFIG = "aws-config"
PROFILE = "mlops-edge-local"
#: Set by `local env`: the state directory whose cloud this shell points at.
MARKER_ENV = "MLOPS_EDGE_LOCAL"
#: Set by `local env`: JSON of what each variable it set was before (null: it was not set).
RESTORE_ENV = "MLOPS_EDGE_LOCAL_RESTORE"
#: A caller's session credentials would be sent along with the local keys: cleared, then restored.
CLEARED = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass(frozen=True)
class Running:
    """A live record: the process that holds the local cloud and what reaches it."""

    pid: int
    env: dict[str, str]
    state_dir: Path
    by: str
    started_at: str
    detached: bool = False
    log: str | None = None
    ticks: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.env.get("AWS_ENDPOINT_URL", "")

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[-1]) if self.endpoint_url else 0

    @property
    def mqtt_host(self) -> str:
        return self.env.get("MLOPS_EDGE_MQTT_HOST", "")

    @property
    def mqtt_port(self) -> int:
        """The broker's port as the record says (0 when a record has none: not a number to use)."""
        value = self.env.get("MLOPS_EDGE_MQTT_PORT", "")
        return int(value) if value.isdigit() else 0

    @property
    def mqtt_url(self) -> str:
        """``mqtts://host:port`` (mTLS), or "" when the record names no broker."""
        return f"mqtts://{self.mqtt_host}:{self.mqtt_port}" if self.mqtt_host and self.mqtt_port else ""

    def as_dict(self) -> dict[str, Any]:
        """What `local status --output json` reports of the record (stable keys, documented in
        docs/local-cloud.md): both ports, so a script finds the broker without the health check."""
        return {
            "pid": self.pid,
            "by": self.by,
            "started_at": self.started_at,
            "detached": self.detached,
            "state_dir": str(self.state_dir),
            "endpoint_url": self.endpoint_url,
            "port": self.port,
            "mqtt_host": self.mqtt_host,
            "mqtt_port": self.mqtt_port,
            "log": self.log,
        }


def exports(env: Mapping[str, str]) -> str:
    """``export`` lines for ``env`` (shell-quoted)."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def aws_config_text(env: Mapping[str, str]) -> str:
    """An AWS config file with the ``mlops-edge-local`` profile (endpoint, region, keys)."""
    return (
        f"# written by mlops-edge for the local cloud of {env.get('AWS_ENDPOINT_URL', '')}; rewritten at start\n"
        f"[profile {PROFILE}]\n"
        f"endpoint_url = {env['AWS_ENDPOINT_URL']}\n"
        f"region = {env.get('AWS_REGION', 'us-east-1')}\n"
        f"aws_access_key_id = {env.get('AWS_ACCESS_KEY_ID', 'testing')}\n"
        f"aws_secret_access_key = {env.get('AWS_SECRET_ACCESS_KEY', 'testing')}\n"
        "output = json\n"
    )


def _write_private(path: Path, text: str) -> None:
    """Atomically, readable by the owner only (it holds the paths to the MQTT keys)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def write_env_file(
    state_dir: Path,
    env: Mapping[str, str],
    *,
    by: str = "mlops-edge run --keep",
    detached: bool = False,
    log: Path | None = None,
) -> Path:
    """Record this process as the holder of the state directory's local cloud, with ``env``, and
    write the AWS config file beside it. Returns the record's path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "env.sh").unlink(missing_ok=True)  # an older mlops-edge's: never source it again
    _write_private(state_dir / AWS_CONFIG, aws_config_text(env))
    record = {
        "pid": os.getpid(),
        "ticks": processes.start_ticks(os.getpid()),
        "by": by,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "detached": detached,
        "log": str(log) if log else None,
        "env": dict(env),
    }
    path = state_dir / RECORD
    _write_private(path, json.dumps(record, indent=1) + "\n")
    return path


def clear_env_file(state_dir: Path) -> None:
    """Remove the record if this process wrote it (a stopping holder; never another's)."""
    path = state_dir / RECORD
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def running(state_dir: Path) -> Running | None:
    """The live holder of ``state_dir``'s local cloud, or None (no record, or a stale one)."""
    path = state_dir / RECORD
    try:
        data = json.loads(path.read_text())
        pid, ticks = int(data["pid"]), data.get("ticks")
        env = {str(k): str(v) for k, v in data["env"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # half-written or foreign: nothing usable runs from it
    if not processes.alive(pid, ticks):
        return None
    known = {"pid", "ticks", "by", "started_at", "detached", "log", "env"}
    return Running(
        pid=pid,
        env=env,
        state_dir=state_dir.resolve(),
        by=str(data.get("by", "")),
        started_at=str(data.get("started_at", "")),
        detached=bool(data.get("detached")),
        log=data.get("log"),
        ticks=ticks,
        extra={k: v for k, v in data.items() if k not in known},
    )


def local_environ(cloud: Running) -> dict[str, str]:
    """Everything that points a process at the cloud: its variables, the config file, the profile."""
    return {
        **cloud.env,
        "AWS_CONFIG_FILE": str(cloud.state_dir / AWS_CONFIG),
        "AWS_PROFILE": PROFILE,
        MARKER_ENV: str(cloud.state_dir),
    }


def exec_environ(cloud: Running, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of one command run against the cloud: the caller's, plus the cloud's."""
    base = {k: v for k, v in environ.items() if k not in CLEARED and k != RESTORE_ENV}
    return {**base, **local_environ(cloud)}


def shell_exports(cloud: Running, environ: Mapping[str, str]) -> str:
    """Lines for ``eval``: export the cloud's environment and remember what it replaces.

    Run twice, the first remembered values stay: ``--unset`` goes back to the shell before both."""
    wanted = local_environ(cloud)
    restore = _restore_of(environ)
    if restore is None:
        restore = {key: environ.get(key) for key in [*wanted, *CLEARED]}
    else:
        restore.update({key: environ.get(key) for key in [*wanted, *CLEARED] if key not in restore})
    lines = [exports(wanted)]
    lines += [f"unset {key}" for key in CLEARED if key in environ]
    lines.append(exports({RESTORE_ENV: json.dumps(restore, separators=(",", ":"))}))
    return "\n".join(lines)


def _restore_of(environ: Mapping[str, str]) -> dict[str, str | None] | None:
    try:
        data = json.loads(environ[RESTORE_ENV])
    except (KeyError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def shell_unset(environ: Mapping[str, str], cloud_env: Mapping[str, str] | None = None) -> str:
    """Lines for ``eval`` that undo :func:`shell_exports`: each variable back to what it was.

    Without the remembered values (a shell that sourced an old env.sh) every variable the local
    cloud sets is unset."""
    restore = _restore_of(environ)
    if restore is None:
        names = [*(cloud_env or {}), "AWS_CONFIG_FILE", "AWS_PROFILE", MARKER_ENV, *DEFAULT_NAMES]
        restore = dict.fromkeys(dict.fromkeys(names))
    lines = []
    for key, value in restore.items():
        lines.append(f"unset {key}" if value is None else exports({key: value}))
    lines.append(f"unset {RESTORE_ENV}")
    return "\n".join(lines)


#: What the local cloud's environment holds, for an --unset with nothing remembered.
DEFAULT_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "MLOPS_EDGE_MQTT_HOST",
    "MLOPS_EDGE_MQTT_PORT",
    "MLOPS_EDGE_MQTT_CA",
    "MLOPS_EDGE_MQTT_CERT",
    "MLOPS_EDGE_MQTT_KEY",
    STATE_MACHINE_ENV,
)
