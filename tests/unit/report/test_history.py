"""Folding a Step Functions history into per-state progress: visits, retries, failures, timings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_edge.report.history import ExecutionProgress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class History:
    """Builds events the way GetExecutionHistory returns them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, at: float, **details: Any) -> History:
        event = {"id": len(self.events) + 1, "type": kind, "timestamp": T0 + timedelta(seconds=at), **details}
        self.events.append(event)
        return self

    def enter(self, kind: str, name: str, at: float) -> History:
        return self.add(f"{kind}StateEntered", at, stateEnteredEventDetails={"name": name, "input": "{}"})

    def exit(self, kind: str, name: str, at: float, output: Any = None) -> History:
        details = {"name": name, "output": json.dumps(output if output is not None else {})}
        return self.add(f"{kind}StateExited", at, stateExitedEventDetails=details)


def test_poll_loop_counts_visits_and_sums_time() -> None:
    h = History().add("ExecutionStarted", 0)
    t = 0.0
    for _ in range(3):
        h.enter("Wait", "WaitTraining", t).exit("Wait", "WaitTraining", t + 1)
        h.enter("Task", "DescribeTraining", t + 1).exit("Task", "DescribeTraining", t + 1.5)
        t += 1.5
    progress = ExecutionProgress()
    progress.feed(h.events)
    assert progress.states["WaitTraining"].visits == 3
    assert progress.timings() == {"WaitTraining": 3.0, "DescribeTraining": 1.5}
    assert progress.status == "RUNNING"


def test_already_seen_events_are_ignored_when_history_is_refetched() -> None:
    h = History().add("ExecutionStarted", 0).enter("Task", "Configure", 0).exit("Task", "Configure", 2)
    progress = ExecutionProgress()
    progress.feed(h.events)
    changed = progress.feed(h.events)
    assert changed == []
    assert progress.states["Configure"].visits == 1
    assert progress.states["Configure"].total_s == 2.0


def test_retry_then_success_counts_one_retry_and_ends_succeeded() -> None:
    h = History().add("ExecutionStarted", 0).enter("Task", "ExportOnnx", 0)
    h.add("LambdaFunctionScheduled", 0.1)
    h.add(
        "LambdaFunctionFailed", 1, lambdaFunctionFailedEventDetails={"error": "TransientError", "cause": "x"}
    )
    h.add("LambdaFunctionScheduled", 3)
    h.add("LambdaFunctionSucceeded", 4)
    h.exit("Task", "ExportOnnx", 4, {"model": {"task": "regression"}})
    progress = ExecutionProgress()
    progress.feed(h.events)
    state = progress.states["ExportOnnx"]
    assert (state.retries, state.failures, state.status) == (1, 1, "succeeded")
    assert progress.output_of("ExportOnnx") == {"model": {"task": "regression"}}
    assert progress.last_output == {"model": {"task": "regression"}}


def test_failed_execution_names_the_failing_state_and_cause() -> None:
    h = History().add("ExecutionStarted", 0).enter("Task", "CheckDeployment", 0)
    h.add("LambdaFunctionScheduled", 0)
    h.add(
        "LambdaFunctionFailed",
        1,
        lambdaFunctionFailedEventDetails={
            "error": "DeploymentFailed",
            "cause": "thing-1: ARTIFACT_CHECKSUM_MISMATCH",
        },
    )
    h.exit("Task", "CheckDeployment", 1)
    h.enter("Fail", "PipelineFailed", 2)
    h.add(
        "ExecutionFailed",
        2,
        executionFailedEventDetails={"error": "DeploymentFailed", "cause": "rolled back"},
    )
    progress = ExecutionProgress()
    progress.feed(h.events)
    assert progress.status == "FAILED"
    assert (progress.error, progress.cause) == ("DeploymentFailed", "rolled back")
    failing = progress.failing_state()
    assert failing is not None and failing.name == "CheckDeployment"
    assert "ARTIFACT_CHECKSUM_MISMATCH" in (failing.cause or "")
    assert progress.states["CheckDeployment"].status == "failed"


def test_succeeded_execution_keeps_its_output() -> None:
    h = History().add("ExecutionStarted", 0)
    h.add("ExecutionSucceeded", 5, executionSucceededEventDetails={"output": json.dumps({"ok": 1})})
    progress = ExecutionProgress()
    progress.feed(h.events)
    assert progress.status == "SUCCEEDED" and progress.output == {"ok": 1}
