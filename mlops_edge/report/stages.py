"""The rollout's stages in the report: one row per stage, and each device's stage.

The rows are the state document's ``$.rollout.stages`` (EvaluateStage writes one as each stage
finishes, RolloutStopped the stopping stage's and the skipped ones); each device's stage, status
and reason is the S3 detail ``rollout.json`` (``pipeline.execution_detail.ROLLOUT``), because the
per-stage deployment and verification detail objects are rewritten by the next stage. Kept apart
from ``summary`` so the console can render the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rich.table import Table

from pipeline.execution_detail import ROLLOUT, detail_uri

#: The columns of a stage row, in the order the tables show them.
COLUMNS = ("name", "thing_group", "status", "targeted", "succeeded", "failed", "verified", "seconds")


def stage_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``$.rollout.stages`` with every column present (an older document has none: no rows)."""
    rollout = doc.get("rollout")
    rows = rollout.get("stages") if isinstance(rollout, Mapping) else None
    if not isinstance(rows, list):
        return []
    return [
        {key: row.get(key) for key in (*COLUMNS, "deployment_id")} for row in rows if isinstance(row, Mapping)
    ]


def device_stages(
    doc: Mapping[str, Any], read: Callable[[str], Mapping[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """thing -> its entry in ``rollout.json`` (``stage``, ``status``, ``detail``, ``verified``)."""
    config = doc.get("config")
    if not isinstance(config, Mapping) or not {"bucket", "state_prefix", "execution"} <= set(config):
        return {}
    detail = read(detail_uri(config, ROLLOUT)) or {}
    found: dict[str, dict[str, Any]] = {}
    for stage in detail.get("stages") or []:
        for device in (stage.get("devices") if isinstance(stage, Mapping) else None) or []:
            if isinstance(device, Mapping) and "thing" in device:
                found[str(device["thing"])] = dict(device)
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def stages_markdown(rows: list[Mapping[str, Any]]) -> list[str]:
    """The stage table as Markdown lines (nothing for a document without stages)."""
    if not rows:
        return []
    lines = ["", "| stage | thing group | status | targeted | succeeded | failed | verified | seconds |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |" for row in rows]
    return lines


def stages_table(rows: list[Mapping[str, Any]]) -> Table | None:
    """The stage table for the console (None without stages)."""
    if not rows:
        return None
    table = Table(*[c.replace("_", " ") for c in COLUMNS], title="stages", title_justify="left")
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in COLUMNS])
    return table
