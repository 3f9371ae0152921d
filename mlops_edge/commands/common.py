"""What the commands share: the console, user errors, and finding the deployed state machine."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console

from mlops_edge.environment.envfile import STATE_MACHINE_ENV
from pipeline.config.deployment import STATE_MACHINE_NAME

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; ARNs and paths need more.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


class UserError(click.ClickException):
    """A problem the user can fix (bad option, nothing deployed, ...): message and exit 1, no traceback."""


def state_machine_arn(sfn: Any, given: str | None = None) -> str:
    """The pipeline's state machine: the option, then $MLOPS_EDGE_STATE_MACHINE_ARN, then by name."""
    if given:
        return given
    if os.environ.get(STATE_MACHINE_ENV):
        return os.environ[STATE_MACHINE_ENV]
    candidates = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        candidates += [m for m in page["stateMachines"] if "mlops-edge" in m["name"].lower()]
    exact = [m for m in candidates if m["name"] == STATE_MACHINE_NAME]
    if exact:
        return exact[0]["stateMachineArn"]
    if len(candidates) == 1:
        return candidates[0]["stateMachineArn"]
    if not candidates:
        raise UserError(
            "no mlops-edge state machine found in this account/region; deploy it (cdk deploy), start the "
            f"local environment (mlops-edge run --keep), or pass --state-machine / set {STATE_MACHINE_ENV}"
        )
    names = ", ".join(m["name"] for m in candidates)
    raise UserError(f"several state machines match ({names}); pass --state-machine ARN")


def execution_arn(sfn: Any, machine_arn: str, name_or_arn: str) -> str:
    """Accept an execution ARN or just its name (names are unique per state machine)."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    prefix = machine_arn.replace(":stateMachine:", ":execution:")
    return f"{prefix}:{name_or_arn}"
