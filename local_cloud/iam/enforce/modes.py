"""``MLOPS_EDGE_IAM``: what the authorizer does with its decisions (off, audit, enforce)."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path

from local_cloud.iam.enforce.log import DecisionLog


class Mode(enum.StrEnum):
    OFF = "off"
    AUDIT = "audit"
    ENFORCE = "enforce"


IAM_MODE_ENV = "MLOPS_EDGE_IAM"
#: What AWS does: a role session may do only what its policies allow (`audit` logs would-be
#: refusals without refusing; `off` evaluates nothing).
DEFAULT_MODE = Mode.ENFORCE
LOG_NAME = Path("iam") / "decisions.jsonl"


def mode_from_env(environ: Mapping[str, str] | None = None) -> Mode:
    value = (environ if environ is not None else os.environ).get(IAM_MODE_ENV, "").strip().lower()
    if not value:
        return DEFAULT_MODE
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(
            f"{IAM_MODE_ENV}={value!r}: expected one of {', '.join(m.value for m in Mode)}"
        ) from None


class ModeHolder:
    """What every part of the authorizer reads: its mode and its decision log (None when off)."""

    mode: Mode
    log: DecisionLog | None

    @property
    def enforcing(self) -> bool:
        return self.mode is Mode.ENFORCE
