"""The execution page's Rollout panel: one row per rollout stage, from the same fold as the graph.

The finished stages' rows are :func:`mlops_edge.report.stages.stage_rows` of the state document
the run report reads (the execution's output, else the last state output), unchanged, so the page
and the terminal report never disagree. While the execution runs, ``$.rollout.stages`` holds only
the stages EvaluateStage has weighed; the panel adds the stages still to come from the normalized
``config.rollout`` (``pipeline.config.rollout.stage_of``, the lookup the handlers use), marks the
one at ``$.rollout.index`` as current, and, before Configure has said anything, shows the single
``fleet`` stage an input without ``rollout`` gets. Computed on the server with every ``history``
message of the execution stream: the panel updates with the graph, with no polling of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.stages import COLUMNS, stage_rows
from pipeline.config.rollout import FLEET, stage_of

__all__ = ["rollout_json", "state_document"]

#: Status of a stage the rollout has not reached: while the execution runs, and after it ended.
PENDING, NOT_RUN, RUNNING, STOPPED = "PENDING", "NOT_RUN", "RUNNING", "STOPPED"


def state_document(progress: ExecutionProgress) -> Mapping[str, Any]:
    """The document the run report reads (``summary.build_report``): the output, else the last one."""
    if isinstance(progress.output, Mapping):
        return progress.output
    return progress.last_output if isinstance(progress.last_output, Mapping) else {}


def _planned(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each configured stage's name and thing group (one ``fleet`` stage before Configure ran)."""
    config = doc.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("deployment"), Mapping):
        try:
            _, first, count = stage_of(config, 0)
            stages = [first, *(stage_of(config, i)[1] for i in range(1, count))]
            return [{"name": s["name"], "thing_group": s.get("thing_group")} for s in stages]
        except (KeyError, TypeError, ValueError, IndexError):  # a document of another shape
            pass
    return [{"name": FLEET, "thing_group": None}]


def _empty(stage: Mapping[str, Any], status: str) -> dict[str, Any]:
    row: dict[str, Any] = {key: None for key in (*COLUMNS, "deployment_id")}
    return {**row, "name": stage["name"], "thing_group": stage["thing_group"], "status": status}


def _index(doc: Mapping[str, Any]) -> int:
    rollout = doc.get("rollout")
    index = rollout.get("index") if isinstance(rollout, Mapping) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


def _deployed(doc: Mapping[str, Any], index: int) -> Mapping[str, Any] | None:
    """Deploy's ``$.deployment`` when it is stage ``index``'s (single-stage documents carry no
    ``stage``: the one stage's), else None."""
    deployment = doc.get("deployment")
    if not isinstance(deployment, Mapping) or not deployment.get("deployment_id"):
        return None
    return deployment if deployment.get("stage", index) == index else None


def rollout_json(progress: ExecutionProgress) -> dict[str, Any]:
    """``{"stages": [row, ...], "current": index | None}``: the report's rows for the stages that
    ended, then the stages to come. The stage at ``$.rollout.index`` is ``RUNNING`` (``current``)
    once the rollout reached it (its deployment made, or an earlier stage passed) while the
    execution runs, ``STOPPED`` when the execution ended in it; the others ``PENDING``, or
    ``NOT_RUN`` once the execution ended."""
    doc = state_document(progress)
    finished = stage_rows(doc)
    running = progress.status == "RUNNING"
    index = _index(doc)
    rows: list[dict[str, Any]] = [{**row, "current": False} for row in finished]
    current = None
    for i, stage in enumerate(_planned(doc)[len(finished) :], start=len(finished)):
        row = _empty(stage, PENDING if running else NOT_RUN)
        deployed = _deployed(doc, i) if i == index else None
        if deployed is not None:
            row["targeted"] = deployed.get("device_count")
            row["deployment_id"] = deployed.get("deployment_id")
            row["thing_group"] = deployed.get("thing_group") or row["thing_group"]
        if i == index and (deployed is not None or i > 0):
            row["status"] = RUNNING if running else STOPPED
            current = i if running else None
        rows.append({**row, "current": i == current})
    return {"stages": rows, "current": current}
