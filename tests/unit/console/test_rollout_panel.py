"""The execution page's Rollout panel (issue 12 follow-up): its rows are the terminal report's.

A two-stage history (canary, then fleet) built with the report tests' ``History`` helper is folded
by ``ExecutionProgress`` once; the panel's rows must be ``build_report``'s ``stages`` exactly, and
while the execution runs, the stage the rollout is in is the current one.
"""

from __future__ import annotations

import io
import json
from typing import Any

from mlops_edge.console.executions import progress_json
from mlops_edge.console.stages import rollout_json
from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.summary import build_report
from pipeline.config.rollout import normalize
from tests.unit.report.test_history import History

DEPLOYMENT = {"thing_group": "fleet-group"}
CONFIG = {
    "deployment": DEPLOYMENT,
    "rollout": normalize(
        {"stages": [{"name": "canary", "canary": {"devices": 1}}, {"name": "fleet"}]},
        DEPLOYMENT,
    ),
}


def _row(name: str, group: str, deployment_id: str, targeted: int, seconds: float) -> dict[str, Any]:
    return {
        "name": name,
        "thing_group": group,
        "deployment_id": deployment_id,
        "targeted": targeted,
        "succeeded": targeted,
        "failed": 0,
        "verified": targeted,
        "seconds": seconds,
        "status": "SUCCEEDED",
    }


CANARY = _row("canary", "fleet-group-canary", "d-0", 1, 6.3)
FLEET = _row("fleet", "fleet-group", "d-1", 3, 12.5)


def _two_stages() -> History:
    """Configure, the canary stage weighed, its Bake, the fleet stage deployed (still running)."""
    h = History().add("ExecutionStarted", 0)
    h.enter("Task", "Configure", 0).exit("Task", "Configure", 1, {"config": CONFIG, "rollout": {"index": 0}})
    state = {"config": CONFIG, "rollout": {"index": 0, "count": 2, "stages": []}}
    state["deployment"] = {
        "deployment_id": "d-0",
        "stage": 0,
        "thing_group": "fleet-group-canary",
        "device_count": 1,
    }
    h.enter("Task", "Deploy", 2).exit("Task", "Deploy", 3, state)
    state = {**state, "rollout": {"index": 1, "count": 2, "stages": [CANARY]}}
    h.enter("Task", "EvaluateStage", 9).exit("Task", "EvaluateStage", 10, state)
    h.enter("Wait", "Bake", 10).exit("Wait", "Bake", 11, state)
    state = {
        **state,
        "deployment": {"deployment_id": "d-1", "stage": 1, "thing_group": "fleet-group", "device_count": 3},
    }
    return h.enter("Task", "Deploy", 11).exit("Task", "Deploy", 12, state)


class NoDetail:
    """S3 without the per-device detail objects (the stage rows never need them)."""

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(b"{}")}


def _report_stages(progress: ExecutionProgress) -> list[dict[str, Any]]:
    report = build_report(
        progress, execution_arn="arn:x", things=[], total_s=1, dataset={}, where_to_look={}, s3=NoDetail()
    )
    return list(report["stages"])


def _without_current(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "current"} for row in rows]


def test_the_panel_rows_are_the_terminal_reports_stage_rows() -> None:
    h = _two_stages()
    final = {"config": CONFIG, "rollout": {"index": 2, "count": 2, "stages": [CANARY, FLEET]}}
    h.enter("Task", "EvaluateStage", 20).exit("Task", "EvaluateStage", 21, final)
    h.add("ExecutionSucceeded", 22, executionSucceededEventDetails={"output": json.dumps(final)})
    progress = ExecutionProgress()
    progress.feed(h.events)
    panel = rollout_json(progress)
    assert _without_current(panel["stages"]) == _report_stages(progress)
    assert [r["name"] for r in panel["stages"]] == ["canary", "fleet"]
    assert panel["current"] is None and not any(r["current"] for r in panel["stages"])
    # it travels with every message of the execution stream, beside the graph's states
    assert progress_json(progress)["rollout"] == panel


def test_while_the_fleet_stage_runs_it_is_current_after_the_reports_canary_row() -> None:
    progress = ExecutionProgress()
    progress.feed(_two_stages().events)
    panel = rollout_json(progress)
    canary, fleet = panel["stages"]
    assert _without_current([canary]) == _report_stages(progress) == [CANARY]
    assert panel["current"] == 1 and fleet["current"] and not canary["current"]
    assert (fleet["name"], fleet["thing_group"], fleet["status"]) == ("fleet", "fleet-group", "RUNNING")
    assert (fleet["targeted"], fleet["deployment_id"], fleet["seconds"]) == (3, "d-1", None)


def test_before_the_deployment_the_stages_wait_and_an_aborted_run_stops_in_its_stage() -> None:
    h = History().add("ExecutionStarted", 0)
    h.enter("Task", "Configure", 0).exit("Task", "Configure", 1, {"config": CONFIG, "rollout": {"index": 0}})
    progress = ExecutionProgress()
    progress.feed(h.events)
    assert [(r["name"], r["status"]) for r in rollout_json(progress)["stages"]] == [
        ("canary", "PENDING"),
        ("fleet", "PENDING"),
    ]
    events = _two_stages().add("ExecutionAborted", 13).events
    progress = ExecutionProgress()
    progress.feed(events)
    panel = rollout_json(progress)
    assert [r["status"] for r in panel["stages"]] == ["SUCCEEDED", "STOPPED"] and panel["current"] is None


def test_a_run_without_rollout_shows_the_single_fleet_stage() -> None:
    assert rollout_json(ExecutionProgress())["stages"] == [
        {
            "name": "fleet",
            "thing_group": None,
            "status": "PENDING",
            "targeted": None,
            "succeeded": None,
            "failed": None,
            "verified": None,
            "seconds": None,
            "deployment_id": None,
            "current": False,
        }
    ]
    # an input without `rollout`: Configure's config has none either (older) or the default stage
    config = {"deployment": DEPLOYMENT}
    h = History().add("ExecutionStarted", 0).enter("Task", "Configure", 0)
    deployed = {
        "config": config,
        "deployment": {"deployment_id": "d-9", "thing_group": "fleet-group", "device_count": 1},
    }
    h.exit("Task", "Configure", 1, {"config": config}).enter("Task", "Deploy", 1).exit(
        "Task", "Deploy", 2, deployed
    )
    progress = ExecutionProgress()
    progress.feed(h.events)
    (row,) = rollout_json(progress)["stages"]
    assert (row["name"], row["thing_group"], row["status"], row["current"]) == (
        "fleet",
        "fleet-group",
        "RUNNING",
        True,
    )
    assert row["targeted"] == 1
