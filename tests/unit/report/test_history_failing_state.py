"""The failing state is the one where the error arose, also through Pass and Fail states (issue 13,
item 6: the summary said ``failed in ?: TrainingFailed``).

``histories/training_failed_one_class.json`` is a real history, recorded from the local cloud's
interpreter by ``mlops-edge run --data one_class.csv --target y --task binary`` (every row of the
target is 1): ``TrainingDone?`` sees the job Failed, ``DescribeTrainingFailure`` reads why,
``TrainingFailedError`` (a Pass) puts ``{"Error": "TrainingFailed", ...}`` in ``$.error``, and
``PipelineFailed`` (a Fail) ends the execution. No Task failed anywhere in it.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_edge.report.history import ExecutionProgress
from tests.unit.report.test_history import History

RECORDED = Path(__file__).parent / "histories"


def _recorded(name: str) -> list[dict[str, Any]]:
    events = json.loads((RECORDED / name).read_text())
    for event in events:
        event["timestamp"] = datetime.fromisoformat(event["timestamp"])
    return events


def _progress(events: list[dict[str, Any]]) -> ExecutionProgress:
    progress = ExecutionProgress()
    progress.feed(events)
    return progress


def test_a_recorded_training_failure_names_the_choice_that_saw_it() -> None:
    progress = _progress(_recorded("training_failed_one_class.json"))
    assert progress.status == "FAILED" and progress.error == "TrainingFailed"
    assert progress.failed_state == "TrainingDone?"
    failing = progress.failing_state()
    assert failing is not None and failing.name == "TrainingDone?" and failing.kind == "Choice"
    assert "needs at least two classes" in (progress.cause or "")


def test_the_recorded_failure_is_named_while_following_it_page_by_page() -> None:
    """The live view feeds the history as it grows; the answer is the same at the end."""
    events = _recorded("training_failed_one_class.json")
    progress = ExecutionProgress()
    for start in range(0, len(events), 7):
        progress.feed(events[start : start + 7])
    assert progress.failed_state == "TrainingDone?"


def _doc(error: dict[str, str] | None = None) -> dict[str, Any]:
    return {"config": {}, **({"error": error} if error else {})}


class Flow(History):
    """States entered and exited with their input/output documents, as the interpreter records them."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.add("ExecutionStarted", 0)

    def step(
        self, kind: str, name: str, out: dict[str, Any] | None = None, inp: dict[str, Any] | None = None
    ) -> Flow:
        self.t += 1
        details = {"name": name, "input": json.dumps(inp if inp is not None else _doc())}
        self.add(f"{kind}StateEntered", self.t, stateEnteredEventDetails=details)
        return self.exit(kind, name, self.t + 0.5, out if out is not None else _doc())

    def task(self, name: str, *attempts: str, out: dict[str, Any] | None = None) -> Flow:
        """A Task whose attempts end as given ("ok" or an error name); its exit is the Catch's."""
        self.t += 1
        self.add(
            "TaskStateEntered", self.t, stateEnteredEventDetails={"name": name, "input": json.dumps(_doc())}
        )
        for outcome in attempts:
            self.add("LambdaFunctionScheduled", self.t)
            if outcome == "ok":
                self.add("LambdaFunctionSucceeded", self.t)
            else:
                details = {"error": outcome, "cause": f"{name} said {outcome}"}
                self.add("LambdaFunctionFailed", self.t, lambdaFunctionFailedEventDetails=details)
        return self.exit("Task", name, self.t + 0.5, out if out is not None else _doc())

    def fail(self, name: str, error: str) -> Flow:
        self.t += 1
        self.add("FailStateEntered", self.t, stateEnteredEventDetails={"name": name, "input": "{}"})
        details = {"error": error, "cause": "..."}
        return self.add("ExecutionFailed", self.t, executionFailedEventDetails=details)


REJECTED = {"Error": "ModelRejected", "Cause": "r2 0.1 < 0.3"}


def test_a_pass_naming_the_error_after_a_choice_names_the_choice() -> None:
    flow = Flow().task("ExportOnnx", "ok").step("Choice", "QualityGate")
    flow.step("Pass", "ModelRejected", out=_doc(REJECTED)).fail("PipelineFailed", "ModelRejected")
    assert _progress(flow.events).failed_state == "QualityGate"


def test_a_task_retried_to_success_earlier_is_not_blamed_for_a_later_named_error() -> None:
    """The former rule took the last state that ever recorded an error: a rescued retry."""
    flow = Flow().task("ExportOnnx", "TransientError", "ok").step("Choice", "QualityGate")
    flow.step("Pass", "ModelRejected", out=_doc(REJECTED)).fail("PipelineFailed", "ModelRejected")
    progress = _progress(flow.events)
    assert progress.failed_state == "QualityGate"
    assert progress.states["ExportOnnx"].retries == 1  # still shown, just not blamed


def test_a_caught_task_failure_names_the_task_through_rollback_and_fail() -> None:
    caught = {"Error": "DeploymentFailed", "Cause": "thing-1: ARTIFACT_CHECKSUM_MISMATCH"}
    flow = Flow().task("CheckDeployment", "DeploymentFailed", out=_doc(caught))
    flow.task("Rollback", "ok", out=_doc(caught)).fail("RolledBack", "DeploymentFailed")
    progress = _progress(flow.events)
    assert progress.failed_state == "CheckDeployment"
    failing = progress.failing_state()
    assert failing is not None and failing.cause == "CheckDeployment said DeploymentFailed"


def test_a_failed_rollback_names_the_rollback() -> None:
    caught = {"Error": "DeploymentFailed", "Cause": "x"}
    flow = Flow().task("CheckDeployment", "DeploymentFailed", out=_doc(caught))
    flow.task("Rollback", "RollbackFailed", "RollbackFailed", out=_doc(caught)).fail(
        "RollbackFailed", "RollbackFailed"
    )
    assert _progress(flow.events).failed_state == "Rollback"


def test_a_named_error_after_deploy_names_its_choice_through_the_rollback() -> None:
    timed_out = {"Error": "DeploymentTimedOut", "Cause": "300 polls"}
    flow = Flow().task("CheckDeployment", "ok").step("Choice", "DeploymentDone?")
    flow.step("Pass", "DeploymentTimedOutError", out=_doc(timed_out))
    flow.task("Rollback", "ok", out=_doc(timed_out)).fail("RolledBack", "DeploymentTimedOut")
    assert _progress(flow.events).failed_state == "DeploymentDone?"


def test_a_fail_state_right_after_a_choice_names_the_choice() -> None:
    flow = Flow().task("Configure", "ok").step("Choice", "ShouldDeploy?")
    flow.fail("NotApproved", "NotApproved")
    assert _progress(flow.events).failed_state == "ShouldDeploy?"


def test_an_uncaught_task_failure_without_a_fail_state_names_the_task() -> None:
    flow = Flow().task("Configure", "ok")
    flow.t += 1
    flow.add("TaskStateEntered", flow.t, stateEnteredEventDetails={"name": "Deploy", "input": "{}"})
    flow.add("LambdaFunctionScheduled", flow.t)
    flow.add("LambdaFunctionFailed", flow.t, lambdaFunctionFailedEventDetails={"error": "Boom", "cause": "c"})
    flow.add("ExecutionFailed", flow.t, executionFailedEventDetails={"error": "Boom", "cause": "c"})
    assert _progress(flow.events).failed_state == "Deploy"


def test_a_timed_out_execution_names_the_state_that_was_running() -> None:
    flow = Flow().task("Configure", "ok")
    flow.add("WaitStateEntered", 9, stateEnteredEventDetails={"name": "WaitDeployment", "input": "{}"})
    flow.add("ExecutionTimedOut", 10)
    assert _progress(flow.events).failed_state == "WaitDeployment"


def test_while_running_the_failing_state_is_one_whose_last_attempt_failed() -> None:
    flow = Flow()
    flow.add("TaskStateEntered", 1, stateEnteredEventDetails={"name": "ExportOnnx", "input": "{}"})
    flow.add("LambdaFunctionScheduled", 1)
    flow.add("LambdaFunctionFailed", 2, lambdaFunctionFailedEventDetails={"error": "Transient", "cause": "c"})
    progress = _progress(flow.events)
    failing = progress.failing_state()
    assert failing is not None and failing.name == "ExportOnnx" and progress.failed_state is None
    flow.add("LambdaFunctionScheduled", 3).add("LambdaFunctionSucceeded", 4)
    progress.feed(flow.events)
    assert progress.failing_state() is None  # rescued by its retry


class _NoDetail:
    """S3 with no per-device detail (no device was reached)."""

    def get_object(self, **_: Any) -> dict[str, Any]:
        import io

        return {"Body": io.BytesIO(b"{}")}


def test_the_report_and_the_summary_name_it() -> None:
    """What the user reads: ``failed in TrainingDone?: TrainingFailed``, not ``failed in ?``."""
    import io

    from rich.console import Console

    from mlops_edge.report.summary import build_report, print_summary

    progress = _progress(_recorded("training_failed_one_class.json"))
    report = build_report(
        progress,
        execution_arn="arn:x",
        things=[],
        total_s=58.8,
        dataset={},
        where_to_look={},
        s3=_NoDetail(),
    )
    assert report["error"]["failed_state"] == "TrainingDone?"
    out = io.StringIO()
    print_summary(Console(file=out, width=200), report)
    assert "failed in TrainingDone?: TrainingFailed" in out.getvalue()
