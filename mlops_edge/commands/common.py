"""What the commands share: the console, user errors, the AWS session, JSON output, and finding
the deployed state machine."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
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


#: ``--output`` of every listing command: the table for people, JSON (docs/cli-json.md) for jq.
output_option = click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table, or json: stable keys (sorted), ISO-8601 UTC times; fields in docs/cli-json.md.",
)


def use_aws(profile: str | None, region: str | None) -> None:
    """Point every boto3 client of this process at ``profile``/``region`` (the global options).

    The in-process session gets them as ``aws --profile --region`` does (an explicit profile's
    credentials win over ``AWS_ACCESS_KEY_ID``); the environment gets ``AWS_PROFILE``/``AWS_REGION``
    so child processes (the SageMaker SDK's) agree. Called even with neither, so a wrong
    ``AWS_PROFILE`` fails here, with the profiles there are, rather than mid-command.
    """
    from botocore.exceptions import BotoCoreError, ProfileNotFound
    from botocore.session import Session
    from botocore.utils import validate_region_name

    from pipeline.aws import use_profile

    try:
        validate_region_name(region)
        use_profile(profile, region)
    except ProfileNotFound as exc:
        config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        known = ", ".join(sorted(Session().available_profiles))
        source = "--profile" if profile else "$AWS_PROFILE"
        raise UserError(
            f"{exc} ({source}; profiles in {config} and the credentials file: {known or 'none'})"
        ) from exc
    except BotoCoreError as exc:  # InvalidRegionError, a config file that does not parse, ...
        raise UserError(str(exc)) from exc
    if profile:
        os.environ["AWS_PROFILE"] = profile
    if region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = region


def iso_utc(value: Any) -> str | None:
    """A datetime (boto3's) or epoch milliseconds as ISO-8601 UTC to the millisecond; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value / 1000.0, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def print_json(document: Any) -> None:
    """Stable JSON on stdout (sorted keys, plain text: no colours or wrapping), for jq and scripts."""
    click.echo(json.dumps(document, sort_keys=True, indent=2, default=str))


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
