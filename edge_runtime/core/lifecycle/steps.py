"""Lifecycle steps of a recipe: what to run, for how long, with which environment."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP_NAMES = ("install", "startup", "run", "shutdown")
#: Fault injection, for demonstrations and tests only (``mlops-edge run --fail-devices``): the core
#: started with this variable fails the Install step of the named components (comma-separated) or of
#: every component (``*``) without running it, as a device whose install breaks would. A real nucleus
#: has no such switch; it exists so a canary failure can be shown and tested on demand.
FAULT_FAIL_INSTALL_ENV = "MLOPS_EDGE_FAULT_FAIL_INSTALL"
DEFAULT_TIMEOUTS = {"install": 120.0, "startup": 120.0, "run": None, "shutdown": 15.0}


@dataclass(frozen=True)
class Step:
    """One lifecycle step after recipe variables were interpolated."""

    name: str
    script: str
    timeout: float | None
    setenv: dict[str, str] = field(default_factory=dict)
    skipif: str | None = None

    def skipped(self) -> bool:
        """``Skipif: onpath <exe>`` / ``exists <path>``, as the nucleus evaluates them."""
        if not self.skipif:
            return False
        kind, _, arg = self.skipif.strip().partition(" ")
        arg = arg.strip()
        if kind == "onpath":
            return shutil.which(arg) is not None
        if kind == "exists":
            return Path(arg).exists()
        return False


def _ci(mapping: dict[str, Any], key: str) -> Any:
    for k, v in mapping.items():
        if str(k).lower() == key:
            return v
    return None


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in value.items()
    }


def parse_lifecycle(lifecycle: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, Step]]:
    """``(lifecycle-wide Setenv, {step name: Step})`` from a recipe's (interpolated) Lifecycle."""
    lifecycle = lifecycle or {}
    setenv = _env(_ci(lifecycle, "setenv"))
    steps: dict[str, Step] = {}
    for name in STEP_NAMES:
        raw = _ci(lifecycle, name)
        if raw is None:
            continue
        if isinstance(raw, str):
            steps[name] = Step(name, raw, DEFAULT_TIMEOUTS[name])
            continue
        script = _ci(raw, "script")
        if not script:
            continue
        timeout = _ci(raw, "timeout")
        steps[name] = Step(
            name,
            str(script),
            float(timeout) if timeout is not None else DEFAULT_TIMEOUTS[name],
            _env(_ci(raw, "setenv")),
            _ci(raw, "skipif"),
        )
    return setenv, steps


def install_fault(component: str, environ: dict[str, str] | None = None) -> str | None:
    """The reason the Install step of ``component`` is to fail by fault injection, else None."""
    value = (os.environ if environ is None else environ).get(FAULT_FAIL_INSTALL_ENV, "").strip()
    names = {name.strip() for name in value.split(",") if name.strip()}
    if "*" in names or component in names:
        return f"fault injected by {FAULT_FAIL_INSTALL_ENV} (for demonstrations and tests)"
    return None


def shell() -> str:
    """The shell the nucleus runs scripts with on Linux."""
    return os.environ.get("MLOPS_EDGE_SHELL", "/bin/sh")
