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


def test_the_device_poller_does_not_call_a_later_stages_device_queued() -> None:
    from mlops_edge.report.follow import greengrass_device_poller
    from mlops_edge.report.history import ExecutionProgress

    class Greengrass:
        def list_effective_deployments(self, coreDeviceThingName: str) -> dict[str, object]:
            found = coreDeviceThingName == "canary-1"
            entry = {"deploymentId": "d-0", "coreDeviceExecutionStatus": "SUCCEEDED"}
            return {"effectiveDeployments": [entry] if found else []}

    class Progress(ExecutionProgress):
        def output_of(self, state_name: str) -> object:
            return {"config": TWO_STAGES, "deployment": {"deployment_id": "d-0", "stage": 0}}

    statuses = greengrass_device_poller(Greengrass(), ["canary-1", "fleet-1"])(Progress())
    assert statuses == {"canary-1": "stage canary (1/2): SUCCEEDED", "fleet-1": "waiting for its stage"}
