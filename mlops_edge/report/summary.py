"""The run report: one dict (written as JSON) built from the execution's own state document, the
same data rendered as Markdown for people and as tables on the console.

Everything comes from what the state machine recorded (its output, or on failure the last state
document it exited with), so the report says what the pipeline saw, not what the CLI assumed. The
document carries only counts per fleet; each device's own record is the S3 detail its handlers
wrote (``pipeline.execution_detail``), read from the URI in the document, or from the key the
execution's ``config`` fixes when the failing state returned none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.iam import iam_markdown, iam_summary_line
from mlops_edge.report.stages import device_stages, stage_rows, stages_markdown, stages_table
from pipeline.execution_detail import DEPLOYMENT_STATUS, VERIFICATION, detail_uri

REPORT_VERSION = 1
#: Why a device has no result when a stage stopped the rollout before the device's own stage.
SKIPPED_DETAIL = "kept its previous version: the rollout stopped before its stage"


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


class DetailReader:
    """Reads the per-device detail objects of an execution from S3 (one client, made when needed)."""

    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3

    def __call__(self, uri: str) -> Mapping[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        if not uri.startswith("s3://"):
            return None
        if self._s3 is None:
            from pipeline.aws import client

            self._s3 = client("s3")
        bucket, _, key = uri[5:].partition("/")
        try:
            doc = json.loads(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except (BotoCoreError, ClientError, ValueError):
            return None
        return doc if isinstance(doc, Mapping) else None


def _detail(doc: Mapping[str, Any], section: str, name: str, read: DetailReader) -> list[Mapping[str, Any]]:
    """A section's per-device list: from its ``devices_uri``, else from the execution's own key
    (a failing state returns no URI, but its handler wrote the detail before raising)."""
    uri = _get(doc, section, "devices_uri")
    config = doc.get("config")
    if not uri and isinstance(config, Mapping) and {"bucket", "state_prefix", "execution"} <= set(config):
        uri = detail_uri(config, name)
    detail = read(uri) if isinstance(uri, str) else None
    devices = (detail or {}).get("devices")
    return [d for d in devices if isinstance(d, Mapping)] if isinstance(devices, list) else []


def _devices(doc: Mapping[str, Any], things: Sequence[str], read: DetailReader) -> list[dict[str, Any]]:
    deployed = {
        d["thing"]: d for d in _detail(doc, "deployment_status", DEPLOYMENT_STATUS, read) if "thing" in d
    }
    verified = {d["thing"]: d for d in _detail(doc, "verification", VERIFICATION, read) if "thing" in d}
    staged = device_stages(doc, read)  # earlier stages' devices: their detail objects were rewritten
    skipped = any(row["status"] == "SKIPPED" for row in stage_rows(doc))
    names = list(dict.fromkeys([*things, *staged, *deployed, *verified]))
    rows = []
    for thing in names:
        stage = staged.get(thing, {})
        dep, ver = deployed.get(thing) or stage, verified.get(thing) or stage.get("verification") or {}
        dep = dep or ({"status": "NOT_DEPLOYED", "detail": SKIPPED_DETAIL} if skipped else {})
        latency = ver.get("latency_ms") or {}
        rows.append(
            {
                "thing_name": thing,
                "stage": stage.get("stage"),
                "status": dep.get("status", "NOT_DEPLOYED"),
                "detail": dep.get("detail", ""),
                "verified": bool(ver.get("passed")) if ver else bool(stage.get("verified")),
                "requests_sent": ver.get("sent", 0),
                "verified_requests": ver.get("matched", 0),
                "failed_requests": ver.get("failed", 0),
                "latency_p50_ms": latency.get("p50"),
                "latency_p99_ms": latency.get("p99"),
                "model_versions": ver.get("model_versions", []),
                "problems": ver.get("problems", []),
            }
        )
    return rows


def _component(doc: Mapping[str, Any], part: str) -> dict[str, Any] | None:
    comp = _get(doc, "components", part)
    if not isinstance(comp, Mapping) or "name" not in comp:
        return None
    return {k: comp.get(k) for k in ("name", "version", "reused", "artifact_uri", "sha256", "state")}


def build_report(
    progress: ExecutionProgress,
    *,
    execution_arn: str,
    things: Sequence[str],
    total_s: float,
    dataset: Mapping[str, Any],
    where_to_look: Mapping[str, str],
    manifest: Mapping[str, Any] | None = None,
    s3: Any = None,
    environment_failure: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report dict; ``status`` is SUCCEEDED only when the execution and every device verified.

    ``environment_failure`` (``part``, ``pid``, ``log``, ``cause``): a part of the local environment
    died during the run, so the execution's own outcome is unknown or moot. ``status`` is ``ERROR``,
    the error names that part and its log, and no per-device detail is read (the endpoint that
    serves it may be the part that died).

    ``manifest`` (the deployed model's ``model.json``) supplies task, metrics and parity when this
    execution did not export the model itself (``model_package_arn`` given: nothing was trained).
    ``s3`` reads the per-device detail (default: ``pipeline.aws.client("s3")``, made when needed).
    """
    doc: Mapping[str, Any] = (
        progress.output if isinstance(progress.output, Mapping) else progress.last_output or {}
    )
    registry = doc.get("registry") or {}
    devices = _devices(doc, things, (lambda _: None) if environment_failure else DetailReader(s3))
    all_verified = bool(devices) and all(d["verified"] for d in devices)
    status = progress.status
    if status == "SUCCEEDED" and not all_verified:
        status = "FAILED"
    if environment_failure is not None:
        status = "ERROR"
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "status": status,
        "execution_status": progress.status,
        "execution_arn": execution_arn,
        "dataset": dict(dataset),
        "model": _model_section(doc, registry, manifest),
        "components": {"model": _component(doc, "model"), "inference": _component(doc, "inference")},
        "deployment": {
            "deployment_id": _get(doc, "deployment", "deployment_id"),
            "thing_group": _get(doc, "deployment", "thing_group"),
            "summary": _get(doc, "deployment_status", "summary"),
        },
        "verification": {
            "passed": bool(_get(doc, "verification", "passed")),
            "summary": _get(doc, "verification", "summary"),
        },
        "stages": stage_rows(doc),
        "devices": devices,
        "timings_s": progress.timings(),
        "total_s": round(total_s, 2),
        "error": None,
    }
    if progress.status != "SUCCEEDED" or status != "SUCCEEDED":
        report["error"] = _error_section(progress, doc, where_to_look)
    if environment_failure is not None:
        report["error"].update(_environment_error(environment_failure, where_to_look))
    return report


def _model_section(
    doc: Mapping[str, Any], registry: Mapping[str, Any], manifest: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The report's ``model``: the execution's own ``model`` output, else the deployed ``manifest``."""
    model_doc = doc.get("model") or {
        k: v for k, v in (manifest or {}).items() if k in ("task", "metrics", "parity", "sha256")
    }
    return {
        "task": model_doc.get("task") or _get(registry, "model", "task"),
        "metrics": model_doc.get("metrics") or {},
        "parity": model_doc.get("parity") or {},
        "onnx_uri": model_doc.get("onnx_uri") or _get(registry, "model", "onnx_uri"),
        "sha256": model_doc.get("sha256") or _get(registry, "model", "sha256"),
        "model_package_arn": registry.get("model_package_arn"),
        "model_package_version": registry.get("model_package_version"),
        "approval_status": _get(doc, "promotion", "approval_status") or registry.get("approval_status"),
    }


def _error_section(
    progress: ExecutionProgress, doc: Mapping[str, Any], where_to_look: Mapping[str, str]
) -> dict[str, Any]:
    """The report's ``error`` when the run did not succeed: the failing state, its error and cause."""
    failing = progress.failing_state()
    return {
        "failed_state": failing.name if failing else progress.failed_state,
        "error": progress.error or (failing.error if failing else None),
        "cause": readable_cause(progress.cause or (failing.cause if failing else None)),
        "rollback": doc.get("rollback"),
        "where_to_look": dict(where_to_look),
    }


def _environment_error(failure: Mapping[str, Any], where_to_look: Mapping[str, str]) -> dict[str, Any]:
    """What an environment failure overrides in the report's ``error``: the part that died comes first."""
    return {
        "error": "EnvironmentFailed",
        "cause": failure.get("cause"),
        "environment": {k: failure.get(k) for k in ("part", "pid", "log", "exit_code")},
        "where_to_look": {
            f"{failure.get('part')} (the part that died)": failure.get("log"),
            **dict(where_to_look),
        },
    }


def readable_cause(cause: str | None) -> str | None:
    """A Lambda error's cause is its JSON error document; people need the message, not the trace."""
    if not cause:
        return cause
    try:
        doc = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(doc, dict) and "errorMessage" in doc:
        return str(doc["errorMessage"])
    return cause


def manifest_uri(progress: ExecutionProgress) -> str | None:
    """Where the deployed model's manifest is, from the registry step of the state document."""
    doc = progress.output if isinstance(progress.output, Mapping) else progress.last_output or {}
    return _get(doc, "registry", "model", "manifest_uri") or _get(doc, "model", "manifest_uri")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _metrics_line(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()) or "—"


def _parity_line(parity: Mapping[str, Any]) -> str:
    if not parity:
        return "—"
    return (
        f"{'passed' if parity.get('passed') else 'FAILED'}: max abs {_fmt(parity.get('max_abs_diff'))}, "
        f"max rel {_fmt(parity.get('max_rel_diff'))} over {_fmt(parity.get('rows'))} rows"
    )


def _component_line(comp: Mapping[str, Any] | None) -> str:
    if not comp:
        return "—"
    return f"{comp['name']} {comp['version']}" + (" (reused)" if comp.get("reused") else " (new)")


def to_markdown(report: Mapping[str, Any]) -> str:
    """The report for people: what shipped, where, how it did, and on failure where to look."""
    model = report["model"]
    lines = [
        f"# mlops-edge run: {report['status']}",
        "",
        f"- execution: `{report['execution_arn']}` ({report['execution_status']}), {report['total_s']:.1f} s",
        f"- dataset: {report['dataset'].get('name', '')} (task {model.get('task') or '?'})",
        f"- metrics: {_metrics_line(model.get('metrics') or {})}",
        f"- ONNX parity: {_parity_line(model.get('parity') or {})}",
        f"- model package: `{model.get('model_package_arn') or '—'}` (version "
        f"{_fmt(model.get('model_package_version')) or '—'}, {model.get('approval_status') or '—'})",
        f"- model component: {_component_line(report['components']['model'])}",
        f"- inference component: {_component_line(report['components']['inference'])}",
        f"- deployment: `{report['deployment'].get('deployment_id') or '—'}` to "
        f"{report['deployment'].get('thing_group') or '—'}: {report['deployment'].get('summary') or '—'}",
        *stages_markdown(report.get("stages") or []),
        "",
        "| device | stage | deployment | verified | requests ok/sent | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in report["devices"]:
        lines.append(
            f"| {d['thing_name']} | {d.get('stage') or '—'} | {d['status']} | {'yes' if d['verified'] else 'no'} | "
            f"{d['verified_requests']}/{d['requests_sent']} | {_fmt(d['latency_p50_ms'])} | "
            f"{_fmt(d['latency_p99_ms'])} |"
        )
    lines += ["", "| state | seconds |", "|---|---|"]
    lines += [f"| {name} | {secs:.2f} |" for name, secs in report["timings_s"].items()]
    lines += iam_markdown(report.get("iam") or {})
    error = report.get("error")
    if error:
        lines += ["", "## What failed", ""]
        if error.get("environment"):
            env = error["environment"]
            lines.append(
                f"- the local environment's {env.get('part')} died (PID {env.get('pid')}), log `{env.get('log')}`"
            )
        lines += [
            f"- state: {error.get('failed_state') or '—'}",
            f"- error: {error.get('error') or '—'}",
            f"- cause: {error.get('cause') or '—'}",
        ]
        for d in report["devices"]:
            if d["status"] != "SUCCEEDED" or not d["verified"]:
                reason = d["detail"] or "; ".join(map(str, d["problems"])) or "not verified"
                lines.append(f"- {d['thing_name']}: {reason}")
        lines += ["", "Where to look:", ""]
        lines += [f"- {what}: `{where}`" for what, where in (error.get("where_to_look") or {}).items()]
    return "\n".join(lines) + "\n"


def write_report(report: Mapping[str, Any], json_path: Path) -> Path:
    """Writes ``json_path`` and the Markdown beside it (same name, ``.md``); returns the Markdown path."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path = json_path.with_suffix(".md")
    md_path.write_text(to_markdown(report))
    return md_path


def print_summary(console: Console, report: Mapping[str, Any]) -> None:
    """The end-of-run summary on the console."""
    model = report["model"]
    ok = report["status"] == "SUCCEEDED"
    console.print()
    console.print(f"[bold {'green' if ok else 'red'}]{report['status']}[/] in {report['total_s']:.1f} s")
    facts = Table.grid(padding=(0, 2))
    facts.add_row("task", _fmt(model.get("task")))
    facts.add_row("metrics", _metrics_line(model.get("metrics") or {}))
    facts.add_row("ONNX parity", _parity_line(model.get("parity") or {}))
    facts.add_row(
        "model package",
        f"version {_fmt(model.get('model_package_version')) or '—'} {model.get('approval_status') or ''}  "
        f"{model.get('model_package_arn') or ''}",
    )
    facts.add_row("model component", _component_line(report["components"]["model"]))
    facts.add_row("inference component", _component_line(report["components"]["inference"]))
    facts.add_row(
        "deployment",
        f"{report['deployment'].get('deployment_id') or '—'}  {report['deployment'].get('summary') or ''}",
    )
    if report.get("iam", {}).get("roles"):
        facts.add_row("IAM", iam_summary_line(report["iam"]))
    console.print(facts)
    if (stages := stages_table(report.get("stages") or [])) is not None:
        console.print(stages)
    table = Table(
        "device",
        "stage",
        "deployment",
        "verified",
        "ok/sent",
        "p50 ms",
        "p99 ms",
        title="devices",
        title_justify="left",
    )
    for d in report["devices"]:
        table.add_row(
            d["thing_name"],
            d.get("stage") or "—",
            d["status"],
            "yes" if d["verified"] else "no",
            f"{d['verified_requests']}/{d['requests_sent']}",
            _fmt(d["latency_p50_ms"]),
            _fmt(d["latency_p99_ms"]),
        )
    console.print(table)
    error = report.get("error")
    if error and error.get("environment"):
        env = error["environment"]
        console.print(f"[red]ERROR: the local environment's {env.get('part')} died during the run[/]")
        console.print(f"cause: {error.get('cause')}", soft_wrap=True)
        console.print(f"its log: {env.get('log')}", soft_wrap=True)
        if error.get("failed_state"):
            console.print(f"the execution was last in {error['failed_state']}")
    elif error:
        console.print(f"[red]failed in {error.get('failed_state') or '?'}: {error.get('error')}[/]")
    if error and not error.get("environment"):
        console.print(f"cause: {error.get('cause')}", soft_wrap=True)
    if error:
        for d in report["devices"]:
            if d["status"] != "SUCCEEDED" or not d["verified"]:
                console.print(
                    f"  {d['thing_name']}: {d['detail'] or '; '.join(map(str, d['problems'])) or 'not verified'}"
                )
        console.print("where to look:")
        for what, where in (error.get("where_to_look") or {}).items():
            console.print(f"  {what}: {where}")
