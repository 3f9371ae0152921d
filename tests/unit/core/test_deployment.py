"""The deployment task against a fake kernel: statuses, rollback, no state change on bad artifacts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from awsiot import iotjobs

from components import build
from edge_runtime.core.deployment import DeploymentService, DeploymentStatusKeeper
from edge_runtime.core.exceptions import ArtifactChecksumMismatch
from edge_runtime.core.target import Target

MODEL = "com.example.Model"


class FakeKernel:
    def __init__(self) -> None:
        self.target = Target()
        self.applied: list[dict[str, str]] = []
        self.bad_versions: set[str] = set()
        self.tampered: set[str] = set()
        self.groups: set[str] | None = None

    def current_target(self) -> Target:
        return self.target.copy()

    def thing_groups(self) -> set[str] | None:
        return self.groups

    def fetch_recipe(self, name: str, version: str | None, requirements: dict[str, str]) -> Any:
        return build.render_recipe(
            "model", component_name=name, component_version=version or "1.0.1", artifact_uri="s3://b/m.zip"
        )

    def fetch_and_verify(self, target: Target) -> None:
        for name, recipe in target.recipes.items():
            if recipe.version in self.tampered:
                raise ArtifactChecksumMismatch(f"{name}: digest mismatch")

    def apply(self, target: Target) -> None:
        self.applied.append(target.versions)

    def wait_healthy(self, target: Target) -> dict[str, str]:
        return {n: "BROKEN" for n, r in target.recipes.items() if r.version in self.bad_versions}

    def commit(self, target: Target, replaced: Target | None) -> None:
        self.target = target


def _execution(job_id: str, document: Any) -> iotjobs.JobExecutionData:
    return iotjobs.JobExecutionData(job_id=job_id, job_document=document, status="QUEUED")


def _run(kernel: FakeKernel, version: str, policy: str = "ROLLBACK") -> list[dict[str, Any]]:
    """The deployment's execution updates, as the payloads the control plane receives."""
    sent: list[iotjobs.UpdateJobExecutionRequest] = []
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", sent.append))
    doc = {"components": {MODEL: {"version": version}}, "failureHandlingPolicy": policy, "groupName": "g"}
    service._run(_execution(f"job-{version}", doc))
    assert all((r.thing_name, r.job_id) == ("t1", f"job-{version}") for r in sent)
    return [r.to_payload() for r in sent]


def test_success() -> None:
    kernel = FakeKernel()
    statuses = _run(kernel, "1.0.1")
    assert statuses == [
        {"status": "IN_PROGRESS", "statusDetails": {}, "clientToken": "job-1.0.1"},
        {
            "status": "SUCCEEDED",
            "statusDetails": {"detailed-deployment-status": "SUCCESSFUL"},
            "clientToken": "job-1.0.1",
        },
    ]
    assert kernel.target.versions == {MODEL: "1.0.1"}


def test_checksum_mismatch_changes_nothing() -> None:
    kernel = FakeKernel()
    _run(kernel, "1.0.1")
    kernel.tampered.add("1.0.2")
    final = _run(kernel, "1.0.2")[-1]
    assert final["status"] == "FAILED"
    details = final["statusDetails"]
    assert details["detailed-deployment-status"] == "FAILED_NO_STATE_CHANGE"
    assert json.loads(details["deployment-error-stack"])[-1] == "ARTIFACT_CHECKSUM_MISMATCH"
    assert kernel.applied == [{MODEL: "1.0.1"}]
    assert kernel.target.versions == {MODEL: "1.0.1"}


def test_broken_component_rolls_back() -> None:
    kernel = FakeKernel()
    _run(kernel, "1.0.1")
    kernel.bad_versions.add("1.0.3")
    final = _run(kernel, "1.0.3")[-1]
    assert final["statusDetails"]["detailed-deployment-status"] == "FAILED_ROLLBACK_COMPLETE"
    assert json.loads(final["statusDetails"]["deployment-error-types"]) == ["COMPONENT_ERROR"]
    assert kernel.applied == [{MODEL: "1.0.1"}, {MODEL: "1.0.3"}, {MODEL: "1.0.1"}]
    assert kernel.target.versions == {MODEL: "1.0.1"}


def test_do_nothing_policy_keeps_the_failed_set() -> None:
    kernel = FakeKernel()
    kernel.bad_versions.add("1.0.3")
    final = _run(kernel, "1.0.3", policy="DO_NOTHING")[-1]
    assert final["statusDetails"]["detailed-deployment-status"] == "FAILED_ROLLBACK_NOT_REQUESTED"
    assert kernel.target.versions == {MODEL: "1.0.3"}


@pytest.mark.parametrize("document", [{"components": {MODEL: {}}}, None, "not a document"])
def test_unusable_document_is_rejected(document: Any) -> None:
    kernel = FakeKernel()
    sent: list[iotjobs.UpdateJobExecutionRequest] = []
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", sent.append))
    service._run(_execution("j", document))
    assert [(r.job_id, r.status) for r in sent] == [("j", "REJECTED")]
    assert sent[0].status_details["detailed-deployment-status"] == "REJECTED"
    assert kernel.applied == []


def test_duplicate_job_executions_are_queued_once() -> None:
    kernel = FakeKernel()
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", lambda r: None))
    execution = _execution("j1", {"components": {}})
    service.on_job_execution(execution)
    service.on_job_execution(_execution("j1", {"components": {}}))
    service.on_job_execution(iotjobs.JobExecutionData())  # no job id: nothing to run
    assert service._queue.qsize() == 1
    service.on_job_execution(_execution("j2", {"components": {}}))
    assert service._queue.qsize() == 2


def _group_run(kernel: FakeKernel, group: str, version: str) -> str:
    sent: list[iotjobs.UpdateJobExecutionRequest] = []
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", sent.append))
    doc = {"components": {MODEL: {"version": version}}, "groupName": f"thinggroup/{group}"}
    service._run(_execution(f"job-{group}-{version}", doc))
    return str(sent[-1].status)


def test_a_canary_moved_out_of_the_fleet_group_drops_the_fleets_pins() -> None:
    kernel = FakeKernel()
    kernel.groups = {"fleet"}
    assert _group_run(kernel, "fleet", "1.0.1") == "SUCCEEDED"
    kernel.groups = {"canary"}  # the pipeline moved it: fleet -> canary
    assert _group_run(kernel, "canary", "1.0.2") == "SUCCEEDED"
    assert set(kernel.target.groups) == {"thinggroup/canary"}
    assert kernel.target.versions == {MODEL: "1.0.2"}


def test_groups_are_kept_when_the_cloud_cannot_list_them() -> None:
    kernel = FakeKernel()
    assert _group_run(kernel, "fleet", "1.0.1") == "SUCCEEDED"
    kernel.groups = None  # ListThingGroupsForCoreDevice failed: nothing is dropped on a guess
    assert _group_run(kernel, "canary", "1.0.2") == "FAILED"  # the two groups' pins conflict
    assert set(kernel.target.groups) == {"thinggroup/fleet"}
