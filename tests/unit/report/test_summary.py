"""The run report: built from the state document, SUCCEEDED only when every device verified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.summary import build_report, print_summary, to_markdown, write_report


def _doc(verified: list[bool]) -> dict[str, Any]:
    things = [f"t{i}" for i in range(len(verified))]
    return {
        "model": {"task": "binary", "metrics": {"accuracy": 0.95}, "parity": {"passed": True, "max_abs_diff": 1e-7}},
        "registry": {"model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/3", "model_package_version": 3},
        "components": {
            "model": {"name": "p.Model", "version": "1.0.3", "reused": False},
            "inference": {"name": "p.Inference", "version": "1.0.77", "reused": True},
        },
        "deployment": {"deployment_id": "d-1", "thing_group": "g"},
        "deployment_status": {"devices": [{"thing": t, "status": "SUCCEEDED", "detail": ""} for t in things]},
        "verification": {
            "passed": all(verified),
            "devices": [
                {"thing": t, "passed": v, "sent": 4, "matched": 4 if v else 1, "failed": 0 if v else 3,
                 "latency_ms": {"p50": 1.5, "p99": 3.0}}
                for t, v in zip(things, verified, strict=True)
            ],
        },
    }  # fmt: skip


def _progress(status: str, doc: dict[str, Any]) -> ExecutionProgress:
    progress = ExecutionProgress(status=status)
    progress.output = doc if status == "SUCCEEDED" else None
    progress.last_output = doc
    return progress


def test_succeeded_report_has_the_required_fields() -> None:
    report = build_report(
        _progress("SUCCEEDED", _doc([True, True])),
        execution_arn="arn:x",
        things=["t0", "t1"],
        total_s=12.3,
        dataset={"name": "demo"},
        where_to_look={},
    )
    assert report["status"] == "SUCCEEDED" and report["error"] is None
    assert report["model"]["model_package_version"] == 3
    assert report["components"]["inference"]["reused"] is True
    assert [d["latency_p50_ms"] for d in report["devices"]] == [1.5, 1.5]
    assert {"status", "execution_arn", "model", "components", "devices", "timings_s"} <= set(report)
    json.dumps(report)


def test_an_unverified_device_fails_the_run_even_if_the_execution_succeeded() -> None:
    report = build_report(
        _progress("SUCCEEDED", _doc([True, False])),
        execution_arn="arn:x",
        things=["t0", "t1"],
        total_s=1,
        dataset={},
        where_to_look={"device t1": "/tmp/t1"},
    )
    assert report["status"] == "FAILED"
    assert report["error"]["where_to_look"] == {"device t1": "/tmp/t1"}
    assert report["devices"][1]["failed_requests"] == 3


def test_devices_never_reached_are_listed_as_not_deployed() -> None:
    report = build_report(
        _progress("FAILED", {"model": {"task": "regression"}}),
        execution_arn="arn:x",
        things=["t0"],
        total_s=1,
        dataset={},
        where_to_look={},
    )
    assert report["devices"][0]["status"] == "NOT_DEPLOYED"
    assert report["status"] == "FAILED"


def test_markdown_and_console_render_failures_with_reasons(tmp_path: Path) -> None:
    progress = _progress("FAILED", _doc([False]))
    progress.error, progress.cause = "VerificationFailed", "t0 answered 1 of 4 correctly"
    report = build_report(
        progress, execution_arn="arn:x", things=["t0"], total_s=1, dataset={}, where_to_look={}
    )
    md = to_markdown(report)
    assert "VerificationFailed" in md and "| t0 |" in md and "## What failed" in md
    md_path = write_report(report, tmp_path / "r" / "report.json")
    assert md_path.read_text() == md
    assert json.loads((tmp_path / "r" / "report.json").read_text())["status"] == "FAILED"
    console = Console(record=True, width=120)
    print_summary(console, report)
    assert "t0 answered 1 of 4" in console.export_text()


def test_lambda_error_documents_become_their_message() -> None:
    from mlops_edge.report.summary import readable_cause

    doc = json.dumps({"errorMessage": "bad input: $.x", "errorType": "InvalidInput", "stackTrace": ["..."]})
    assert readable_cause(doc) == "bad input: $.x"
    assert readable_cause("plain words") == "plain words"
    assert readable_cause(None) is None


def test_a_deploy_only_run_reports_the_registered_models_metrics_from_its_manifest() -> None:
    doc = _doc([True])
    del doc["model"]
    doc["registry"]["model"] = {"manifest_uri": "s3://b/m/model.json", "task": "binary"}
    progress = _progress("SUCCEEDED", doc)
    from mlops_edge.report.summary import manifest_uri

    assert manifest_uri(progress) == "s3://b/m/model.json"
    manifest = {
        "task": "binary",
        "metrics": {"onnx:auc": 0.99},
        "parity": {"passed": True},
        "features": ["a"],
    }
    report = build_report(
        progress,
        execution_arn="arn:x",
        things=["t0"],
        total_s=1,
        dataset={},
        where_to_look={},
        manifest=manifest,
    )
    assert report["model"]["metrics"] == {"onnx:auc": 0.99} and report["model"]["parity"]["passed"]
