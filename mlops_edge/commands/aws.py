"""`execute`, `executions`, `devices`, `logs`: the deployed pipeline, on AWS or on the local cloud.

Which one is decided by the standard AWS environment (`AWS_ENDPOINT_URL` points at the local
cloud; `mlops-edge run --keep` prints the exports) or by the global `--profile`/`--region`. Every
listing builds its rows once as plain records; the table and `--output json` (docs/cli-json.md)
are two renderings of the same records, so they cannot disagree.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from mlops_edge.commands.common import (
    UserError,
    console,
    execution_arn,
    iso_utc,
    output_option,
    print_json,
    state_machine_arn,
)

EXAMPLE_INPUT = Path(__file__).resolve().parents[2] / "config" / "example-input.json"


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's connection/credential/API errors into one clear line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise UserError(f"{err.get('Code', 'Error')}: {err.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise UserError(
            f"{exc}. For the local cloud, start it (`mlops-edge local up --detach` or `run --keep`) and "
            "run through `mlops-edge local exec -- ...`; for AWS, pass --profile/--region (or set AWS_PROFILE/AWS_REGION)."
        ) from exc


def _when(value: str | None) -> str:
    """A record's ISO-8601 UTC time for the table: to the second, in the reader's local time zone."""
    if not value:
        return ""
    from datetime import datetime

    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _clients() -> tuple[Any, Any]:
    from pipeline.aws import client

    return client("stepfunctions"), client("greengrassv2")


@click.command()
@click.option("--state-machine", "machine", help="State machine ARN (default: the deployed mlops-edge one).")
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Execution input JSON file (default: pipeline/config/example-input.json).",
)
@click.option("--input-json", help="Execution input as a JSON string (overrides --input).")
@click.option("--name", help="Execution name (default: manual-<timestamp>).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the execution live.")
def execute(
    machine: str | None, input_path: Path | None, input_json: str | None, name: str | None, wait: bool
) -> None:
    """Start an execution of the deployed state machine with the documented input."""
    if input_json is not None:
        text = input_json
    else:
        path = input_path or EXAMPLE_INPUT
        if not path.exists():
            raise UserError(f"no input given and {path} is missing")
        text = path.read_text()
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UserError(f"the execution input is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UserError("the execution input must be a JSON object")
    sfn, _ = _clients()
    with aws_errors():
        arn = state_machine_arn(sfn, machine)
        started = sfn.start_execution(
            stateMachineArn=arn,
            name=name or time.strftime("manual-%Y%m%d-%H%M%S"),
            input=json.dumps(document),
        )
        console.print(f"started {started['executionArn']}")
        if not wait:
            return
        from mlops_edge.report.follow import follow_execution
        from mlops_edge.report.live import make_view

        progress = follow_execution(sfn, started["executionArn"], make_view(console, "execution"))
    console.print(f"execution {progress.status}")
    if progress.status != "SUCCEEDED":
        raise UserError(f"{progress.error}: {progress.cause}")


@click.group()
def executions() -> None:
    """List and inspect executions of the deployed state machine."""


def execution_records(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ListExecutions items as `executions list` shows them."""
    return [
        {
            "name": item["name"],
            "execution_arn": item["executionArn"],
            "status": item["status"],
            "started": iso_utc(item.get("startDate")),
            "stopped": iso_utc(item.get("stopDate")),
        }
        for item in items
    ]


@executions.command("list")
@click.option("--state-machine", "machine", help="State machine ARN (default: the deployed mlops-edge one).")
@click.option("--max", "max_items", type=click.IntRange(1, 1000), default=20, show_default=True)
@output_option
def list_executions(machine: str | None, max_items: int, output: str) -> None:
    """The most recent executions."""
    from rich.table import Table

    sfn, _ = _clients()
    with aws_errors():
        arn = state_machine_arn(sfn, machine)
        items = sfn.list_executions(stateMachineArn=arn, maxResults=max_items)["executions"]
    records = execution_records(items)
    if output == "json":
        print_json({"state_machine_arn": arn, "executions": records})
        return
    table = Table("name", "status", "started", "stopped")
    for r in records:
        table.add_row(r["name"], r["status"], _when(r["started"]), _when(r["stopped"]))
    console.print(table)


@executions.command("describe")
@click.argument("execution")
@click.option("--state-machine", "machine")
def describe_execution(execution: str, machine: str | None) -> None:
    """Status, input, output or error of one execution (name or ARN)."""
    sfn, _ = _clients()
    with aws_errors():
        arn = execution_arn(sfn, state_machine_arn(sfn, machine), execution)
        desc = sfn.describe_execution(executionArn=arn)
    shown = {k: v for k, v in desc.items() if k != "ResponseMetadata"}
    for key in ("input", "output"):
        if isinstance(shown.get(key), str):
            with contextlib.suppress(ValueError):
                shown[key] = json.loads(shown[key])
    console.print_json(json.dumps(shown, default=str))


def history_record(arn: str, progress: Any) -> dict[str, Any]:
    """An execution's folded history (report.history.ExecutionProgress) as `executions history` shows it."""
    states = [
        {
            "state": s.name,
            "status": s.status,
            "visits": s.visits,
            "retries": s.retries,
            "time_s": round(s.total_s, 3),
            "error": s.error,
            "cause": s.cause,
        }
        for s in progress.states.values()
    ]
    return {
        "execution_arn": arn,
        "status": progress.status,
        "error": progress.error,
        "cause": progress.cause,
        "started": iso_utc(progress.started_at),
        "stopped": iso_utc(progress.ended_at),
        "states": states,
    }


@executions.command("history")
@click.argument("execution")
@click.option("--state-machine", "machine", help="State machine ARN (default: the deployed mlops-edge one).")
@output_option
def execution_history(execution: str, machine: str | None, output: str) -> None:
    """Per-state visits, retries, time and errors of one execution (name or ARN)."""
    from rich.table import Table

    from mlops_edge.report.history import ExecutionProgress, fetch_history

    sfn, _ = _clients()
    with aws_errors():
        arn = execution_arn(sfn, state_machine_arn(sfn, machine), execution)
        progress = ExecutionProgress()
        progress.feed(fetch_history(sfn, arn))
    record = history_record(arn, progress)
    if output == "json":
        print_json(record)
        return
    table = Table("state", "status", "visits", "retries", "time", "error")
    for s in record["states"]:
        error = f"{s['error']}: {s['cause']}" if s["error"] else ""
        table.add_row(
            s["state"], s["status"], str(s["visits"]), str(s["retries"]), f"{s['time_s']:.2f}s", error[:120]
        )
    console.print(table)
    error = f" — {record['error']}: {record['cause']}" if record["error"] else ""
    console.print(f"execution {record['status']}{error}")


def device_records(gg: Any) -> list[dict[str, Any]]:
    """Every core device with its installed components and latest deployment (`devices`)."""
    records = []
    cores = [c for page in gg.get_paginator("list_core_devices").paginate() for c in page["coreDevices"]]
    for core in cores:
        thing = core["coreDeviceThingName"]
        installed = gg.list_installed_components(coreDeviceThingName=thing).get("installedComponents", [])
        effective = gg.list_effective_deployments(coreDeviceThingName=thing).get("effectiveDeployments", [])
        latest = effective[0] if effective else None
        records.append(
            {
                "thing": thing,
                "status": core["status"],
                "last_report": iso_utc(core.get("lastStatusUpdateTimestamp")),
                "components": [
                    {"name": c["componentName"], "version": c["componentVersion"]} for c in installed
                ],
                "latest_deployment": {
                    "name": latest.get("deploymentName") or None,
                    "deployment_id": latest["deploymentId"],
                    "status": latest["coreDeviceExecutionStatus"],
                }
                if latest
                else None,
            }
        )
    return records


@click.command()
@output_option
def devices(output: str) -> None:
    """Greengrass core devices: health, last report, components installed and the latest deployment."""
    from rich.table import Table

    _, gg = _clients()
    with aws_errors():
        records = device_records(gg)
    if output == "json":
        print_json({"devices": records})
        return
    if not records:
        console.print("no core devices have reported yet")
        return
    table = Table("thing", "status", "last report", "components", "latest deployment")
    for r in records:
        latest = r["latest_deployment"]
        deployment = f"{latest['name'] or latest['deployment_id']}: {latest['status']}" if latest else ""
        components = ", ".join(f"{c['name']}@{c['version']}" for c in r["components"])
        table.add_row(r["thing"], r["status"], _when(r["last_report"]), components, deployment)
    console.print(table)


@click.command()
@click.argument("function")
@click.option("--since", "since_min", type=float, default=60.0, show_default=True, help="Minutes back.")
@click.option("--filter", "pattern", default="", help="CloudWatch Logs filter pattern, e.g. ERROR.")
@output_option
def logs(function: str, since_min: float, pattern: str, output: str) -> None:
    """Print the logs of a pipeline Lambda: FUNCTION is a handler (export_onnx) or a function name."""
    from pipeline.aws import client
    from pipeline.config.deployment import STATE_MACHINE_NAME, function_name
    from pipeline.statemachine import FUNCTION_NAMES

    name = function
    if function.replace("-", "_") in FUNCTION_NAMES:
        name = function_name(STATE_MACHINE_NAME, function.replace("-", "_"))
    from mlops_edge.report.logs import format_event, iter_events, log_group

    group = log_group(name)
    start = int((time.time() - since_min * 60) * 1000)
    printed = 0
    events = []
    with aws_errors():
        for timestamp, message in iter_events(client("logs"), group, start_ms=start, pattern=pattern):
            if output == "json":
                events.append({"timestamp": iso_utc(timestamp), "message": message})
            else:
                console.print(format_event(timestamp, message), markup=False, soft_wrap=True)
            printed += 1
    if output == "json":
        print_json({"log_group": group, "events": events})
    elif not printed:
        console.print(f"no log events in {group} in the last {since_min:g} min")
