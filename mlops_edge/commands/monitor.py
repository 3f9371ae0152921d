"""`mlops-edge monitor`: what the devices see against the training data, per device and fleet-wide.

It reads the drift report the cloud's monitoring function keeps in the pipeline's bucket
(``<state prefix>monitoring/<model version>/report.json``, docs/monitoring.md) through boto3 with
the standard AWS environment, so it shows the local cloud or an AWS account alike. The table and
``--output json`` (docs/cli-json.md) are two renderings of the records of
:mod:`mlops_edge.report.monitoring`, which the console's charts draw too.
"""

from __future__ import annotations

import click

from mlops_edge.commands.common import UserError, console, output_option, print_json


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _mean(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _verdict(checks: list[str]) -> str:
    """✔ ok, or ✖ and the checks that failed (words too, for logs without colour)."""
    if not checks:
        return "[green]✔ ok[/]"
    words = ", ".join(c.removesuffix("_check").replace("baseline_", "") for c in checks)
    return f"[red]✖ {words}[/]"


def _print_scope(record: dict) -> None:
    from rich.table import Table

    from mlops_edge.commands.aws import _when

    where = "fleet" if record["thing"] is None else f"device {record['thing']}"
    span = f", {_when(record['start'])} → {_when(record['end'])}" if record.get("start") else ""
    count = len(record["violations"])
    alert = record["alert"]
    raised = f"; [red]drift alert raised {_when(alert['raised_at'])}[/]" if alert else ""
    console.print(
        f"\n[bold]{where}[/]: {record['windows']} window{'s' if record['windows'] != 1 else ''} judged "
        f"(of {record['received']} received), "
        f"{record['rows']} rows{span}; {count} violation{'s' if count != 1 else ''}{raised}",
        soft_wrap=True,
    )
    table = Table(
        "feature", "distance", "threshold", "verdict", "completeness", "mean (device)", "mean (training)"
    )
    for f in record["features"]:
        table.add_row(
            f["feature"],
            _number(f["distance"]),
            _number(f["threshold"]),
            _verdict(f["checks"]),
            _share(f["completeness"]),
            _mean(f["mean"]),
            _mean(f["training_mean"]),
        )
    console.print(table)


def _bucket(given: str | None) -> str:
    if given:
        return given
    from mlops_edge.environment.component_dev.build import ComponentDevError
    from mlops_edge.environment.component_dev.publish import find_bucket
    from pipeline.aws import client

    try:
        return find_bucket(client("cloudformation"))
    except ComponentDevError as exc:
        raise UserError(str(exc)) from exc


@click.command()
@click.option(
    "--model-version",
    metavar="VERSION",
    help="The model component version to show (default: the newest judged, monitoring/latest.json).",
)
@click.option(
    "--device", "thing", metavar="THING", help="Only this device (default: fleet, then every device)."
)
@click.option("--feature", metavar="NAME", help="Only this feature.")
@click.option(
    "--bucket",
    metavar="NAME",
    envvar="MLOPS_EDGE_BUCKET",
    help="The pipeline's artifact bucket [default: $MLOPS_EDGE_BUCKET, else the stack's ArtifactBucketName].",
)
@click.option(
    "--state-prefix",
    metavar="PREFIX",
    envvar="MLOPS_EDGE_STATE_PREFIX",
    default="state/",
    show_default=True,
    help="Key prefix of the pipeline's state in the bucket (the stack's MLOPS_EDGE_STATE_PREFIX).",
)
@output_option
def monitor(
    model_version: str | None,
    thing: str | None,
    feature: str | None,
    bucket: str | None,
    state_prefix: str,
    output: str,
) -> None:
    """Drift per feature, fleet-wide and per device, against the training baseline.

    For each scope (the fleet first, then each device) and each feature: the drift distance
    (Model Monitor's L-infinity distance) and its threshold from constraints.json, the verdict
    (✔ ok, or ✖ and the checks violated: drift, completeness, data_type), the share of values
    present, and the mean on the devices beside the training mean. Devices publish a window every
    MonitoringWindowSeconds (300 s by default); the cloud judges each one as it arrives.

    \b
    mlops-edge monitor --device mlops-edge-device-01 --feature bmi
    mlops-edge monitor --output json | jq '.scopes[] | select(.violations != []) | .scope'
    """
    from mlops_edge.commands.aws import aws_errors
    from mlops_edge.report.monitoring import MonitoringError, Where, load, monitoring_document
    from pipeline.aws import client

    with aws_errors():
        where = Where(_bucket(bucket), state_prefix)
        try:
            loaded = load(client("s3"), where, model_version)
            document = monitoring_document(loaded, device=thing, feature=feature)
        except MonitoringError as exc:
            raise UserError(str(exc)) from exc
    if output == "json":
        print_json(document)
        return
    from rich.markup import escape

    from mlops_edge.commands.aws import _when

    last = document["judge_windows"]
    console.print(
        f"model {document['model_version']}: judged {_when(document['generated_at'])} over each device's "
        f"last {last} window{'s' if last != 1 else ''} ({document['report_uri']})",
        soft_wrap=True,
    )
    for record in document["scopes"]:
        _print_scope(record)
    for r in document["rejected"]:
        console.print(
            f"[yellow]window left out[/] ({_when(r['received_at'])}, {r.get('thing') or 'no thing'}): "
            f"{escape(r['reason'])}",
            soft_wrap=True,
        )
