"""The run report: built from the state document and the per-device detail it points to in S3,
SUCCEEDED only when every device verified."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.summary import SKIPPED_DETAIL, build_report, print_summary, to_markdown, write_report

CONFIG = {"bucket": "b", "state_prefix": "state/", "execution": "run-1"}
STATUS_URI = "s3://b/state/executions/run-1/deployment-status.json"
VERIFICATION_URI = "s3://b/state/executions/run-1/verification.json"
ROLLOUT_URI = "s3://b/state/executions/run-1/rollout.json"


class FakeS3:
    """``get_object`` over a dict of ``s3://`` URIs to JSON documents; counts the reads."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        uri = f"s3://{Bucket}/{Key}"
        self.reads.append(uri)
        if uri not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(json.dumps(self.objects[uri]).encode())}


def _detail(verified: list[bool]) -> FakeS3:
    things = [f"t{i}" for i in range(len(verified))]
    return FakeS3({
        STATUS_URI: {"devices": [{"thing": t, "status": "SUCCEEDED", "detail": ""} for t in things]},
        VERIFICATION_URI: {
            "devices": [
                {"thing": t, "passed": v, "sent": 4, "matched": 4 if v else 1, "failed": 0 if v else 3,
                 "latency_ms": {"p50": 1.5, "p99": 3.0}}
                for t, v in zip(things, verified, strict=True)
            ],
        },
    })  # fmt: skip


def _doc(verified: list[bool]) -> dict[str, Any]:
    return {
        "config": CONFIG,
        "model": {"task": "binary", "metrics": {"accuracy": 0.95}, "parity": {"passed": True, "max_abs_diff": 1e-7}},
        "registry": {"model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/3", "model_package_version": 3},
        "components": {
            "model": {"name": "p.Model", "version": "1.0.3", "reused": False},
            "inference": {"name": "p.Inference", "version": "1.0.77", "reused": True},
        },
        "deployment": {"deployment_id": "d-1", "thing_group": "g"},
        "deployment_status": {"status": "SUCCEEDED", "summary": f"{len(verified)} succeeded of {len(verified)}",
                              "devices_uri": STATUS_URI},
        "verification": {"passed": all(verified), "devices_uri": VERIFICATION_URI},
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
        s3=_detail([True, True]),
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
        s3=_detail([True, False]),
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


def test_a_failed_check_is_reported_from_the_detail_its_handler_wrote_before_raising() -> None:
    """CheckDeployment raised, so the document has no URI of its own: the execution's key has it."""
    doc = _doc([True, True])
    del doc["deployment_status"], doc["verification"]
    s3 = FakeS3({
        STATUS_URI: {"devices": [
            {"thing": "t0", "status": "SUCCEEDED", "detail": "SUCCESSFUL"},
            {"thing": "t1", "status": "FAILED", "detail": "FAILED (FAILED_ROLLBACK_COMPLETE): digest mismatch"},
        ]},
    })  # fmt: skip
    progress = _progress("FAILED", doc)
    progress.error, progress.cause = "DeploymentFailed", "deployment d-1 failed on 1 of 2 device(s)"
    report = build_report(
        progress, execution_arn="arn:x", things=["t0", "t1"], total_s=1, dataset={}, where_to_look={}, s3=s3
    )
    assert [(d["thing_name"], d["status"], d["verified"]) for d in report["devices"]] == [
        ("t0", "SUCCEEDED", False),
        ("t1", "FAILED", False),
    ]
    # the verification never ran and no stage was evaluated: no objects, no error
    assert s3.reads == [STATUS_URI, VERIFICATION_URI, ROLLOUT_URI]
    assert "t1: FAILED (FAILED_ROLLBACK_COMPLETE): digest mismatch" in to_markdown(report)


def test_without_s3_access_the_devices_are_still_listed() -> None:
    report = build_report(
        _progress("SUCCEEDED", _doc([True])),
        execution_arn="arn:x",
        things=["t0"],
        total_s=1,
        dataset={},
        where_to_look={},
        s3=FakeS3({}),
    )
    assert [d["thing_name"] for d in report["devices"]] == ["t0"] and report["status"] == "FAILED"


def test_markdown_and_console_render_failures_with_reasons(tmp_path: Path) -> None:
    progress = _progress("FAILED", _doc([False]))
    progress.error, progress.cause = "VerificationFailed", "t0 answered 1 of 4 correctly"
    report = build_report(
        progress,
        execution_arn="arn:x",
        things=["t0"],
        total_s=1,
        dataset={},
        where_to_look={},
        s3=_detail([False]),
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
        s3=_detail([True]),
    )
    assert report["model"]["metrics"] == {"onnx:auc": 0.99} and report["model"]["parity"]["passed"]


def test_stage_rows_and_each_devices_stage() -> None:
    """Issue 12: one row per stage from $.rollout; an earlier stage's devices from rollout.json (the
    deployment and verification detail objects belong to the last stage)."""
    doc = _doc([True])
    doc["rollout"] = {
        "index": 0,
        "count": 2,
        "stages": [
            {"name": "canary", "thing_group": "g-canary", "deployment_id": "d-0", "targeted": 1, "succeeded": 0,
             "failed": 1, "verified": None, "seconds": 12.5, "status": "FAILED"},
            {"name": "fleet", "thing_group": "g", "deployment_id": None, "targeted": 0, "succeeded": 0,
             "failed": 0, "verified": None, "seconds": None, "status": "SKIPPED"},
        ],
    }  # fmt: skip
    s3 = FakeS3({
        STATUS_URI: {"devices": [{"thing": "t0", "status": "SUCCEEDED", "detail": "SUCCESSFUL"}]},
        ROLLOUT_URI: {"stages": [{"name": "canary", "devices": [
            {"thing": "c0", "stage": "canary", "status": "FAILED", "detail": "FAILED: fault injected"},
            {"thing": "c1", "stage": "canary", "status": "SUCCEEDED", "detail": "SUCCESSFUL", "verified": True,
             "verification": {"passed": True, "sent": 4, "matched": 4, "latency_ms": {"p50": 1.5, "p99": 3.0}}},
        ]}]},
    })  # fmt: skip
    report = build_report(
        _progress("FAILED", doc), execution_arn="arn:x", things=["t0", "f0"], total_s=1, dataset={},
        where_to_look={}, s3=s3,
    )  # fmt: skip
    assert [(s["name"], s["status"], s["failed"]) for s in report["stages"]] == [
        ("canary", "FAILED", 1),
        ("fleet", "SKIPPED", 0),
    ]
    by_thing = {d["thing_name"]: d for d in report["devices"]}
    assert (by_thing["c0"]["stage"], by_thing["c0"]["status"]) == ("canary", "FAILED")
    assert by_thing["c0"]["detail"] == "FAILED: fault injected"
    assert (by_thing["t0"]["stage"], by_thing["t0"]["status"]) == (None, "SUCCEEDED")
    # a device of the skipped stage: no result, and the reason says why
    assert (by_thing["f0"]["status"], by_thing["f0"]["detail"]) == ("NOT_DEPLOYED", SKIPPED_DETAIL)
    c1 = by_thing["c1"]
    assert (c1["stage"], c1["verified"], c1["verified_requests"], c1["requests_sent"], c1["latency_p99_ms"]) == (
        "canary", True, 4, 4, 3.0
    )  # fmt: skip
    markdown = to_markdown(report)
    assert "| canary | g-canary | FAILED | 1 | 0 | 1 | — | 12.5 |" in markdown
    assert "| fleet | g | SKIPPED |" in markdown and "| c0 | canary | FAILED |" in markdown
