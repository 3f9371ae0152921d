"""A part of the local environment died during the run (issue 13 item 3): the report says ERROR,
names the part and its log, and reads nothing from the (possibly dead) endpoint."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.summary import build_report, print_summary, to_markdown, write_report

DIED = {
    "part": "endpoint",
    "pid": 4242,
    "log": "/state/cloud/endpoint.log",
    "exit_code": -9,
    "cause": "the local environment's endpoint (PID 4242) was killed by signal 9; its log: /state/cloud/endpoint.log",
}


class _NoS3:
    def get_object(self, **_: Any) -> Any:
        raise AssertionError("an environment error reads nothing from the endpoint")


def test_the_report_names_the_dead_part_and_its_log(tmp_path: Path) -> None:
    progress = ExecutionProgress()
    progress.last_output = {"config": {"bucket": "b", "state_prefix": "state/", "execution": "x"}}
    report = build_report(
        progress,
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:x",
        things=["mlops-edge-device-01"],
        total_s=12.0,
        dataset={"name": "diabetes"},
        where_to_look={"this run": "/state/runs/x"},
        s3=_NoS3(),
        environment_failure=DIED,
    )
    assert report["status"] == "ERROR"
    error = report["error"]
    assert error["error"] == "EnvironmentFailed" and error["cause"] == DIED["cause"]
    assert error["environment"] == {k: DIED[k] for k in ("part", "pid", "log", "exit_code")}
    assert next(iter(error["where_to_look"].items())) == ("endpoint (the part that died)", DIED["log"])

    out = io.StringIO()
    print_summary(Console(file=out, width=200), report)
    text = out.getvalue()
    assert "ERROR: the local environment's endpoint died during the run" in text
    assert f"its log: {DIED['log']}" in text and "failed in ?" not in text

    md = write_report(report, tmp_path / "report.json")
    assert md.read_text() == to_markdown(report)
    assert md.read_text().startswith("# mlops-edge run: ERROR")
    assert f"died (PID 4242), log `{DIED['log']}`" in md.read_text()
