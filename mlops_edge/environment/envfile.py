"""`<state dir>/env.sh`: the exports that point a shell at a running local environment."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

#: The local cloud's own state lives here, under the user's state directory.
CLOUD_SUBDIR = "cloud"
#: Set by env.sh so every command finds the local state machine without a lookup by name.
STATE_MACHINE_ENV = "MLOPS_EDGE_STATE_MACHINE_ARN"


def exports(env: Mapping[str, str]) -> str:
    """Shell lines that point a terminal at the local cloud (`source` them or copy them)."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def write_env_file(state_dir: Path, env: Mapping[str, str]) -> Path:
    path = state_dir / "env.sh"
    path.write_text(exports(env) + "\n")
    return path
