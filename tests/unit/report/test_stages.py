"""The rollout's stages in the live view and on the console (issue 12)."""

from __future__ import annotations

from rich.console import Console

from mlops_edge.report.follow import stage_label
from mlops_edge.report.stages import stage_rows, stages_table

TWO_STAGES = {"rollout": {"stages": [{"name": "canary"}, {"name": "fleet"}]}}


def test_the_live_view_names_the_stage_of_a_staged_rollout() -> None:
    state = {"config": TWO_STAGES, "deployment": {"stage": 1}, "rollout": {"index": 1}}
    assert stage_label(state) == "stage fleet (2/2): "
    assert stage_label({**state, "deployment": {"stage": 0}}) == "stage canary (1/2): "
    # one stage (today's single deployment) and older documents keep the plain status
    assert (
        stage_label({"config": {"rollout": {"stages": [{"name": "fleet"}]}}, "deployment": {"stage": 0}})
        == ""
    )
    assert stage_label({"config": {}, "deployment": {}}) == ""


def test_the_console_table_has_a_row_per_stage() -> None:
    rows = stage_rows(
        {
            "rollout": {
                "stages": [
                    {
                        "name": "canary",
                        "thing_group": "g-canary",
                        "status": "SUCCEEDED",
                        "targeted": 2,
                        "seconds": 3.25,
                    },
                    {"name": "fleet", "thing_group": "g", "status": "SKIPPED", "targeted": 0},
                ]
            }
        }
    )
    assert [r["name"] for r in rows] == ["canary", "fleet"] and rows[1]["verified"] is None
    table = stages_table(rows)
    assert table is not None and table.row_count == 2
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "g-canary" in text and "SKIPPED" in text and "3.2" in text
    assert stages_table(stage_rows({})) is None
