"""The deployment task against a fake kernel: statuses, rollback, no state change on bad artifacts."""

from __future__ import annotations

import json
from typing import Any

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

    def current_target(self) -> Target:
        return self.target.copy()

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


def _run(kernel: FakeKernel, version: str, policy: str = "ROLLBACK") -> list[dict[str, Any]]:
    sent: list[tuple[str, bytes]] = []
    status = DeploymentStatusKeeper("t1", lambda topic, payload: sent.append((topic, payload)))
    service = DeploymentService(kernel, status)
    doc = {"components": {MODEL: {"version": version}}, "failureHandlingPolicy": policy, "groupName": "g"}
    service._run({"jobId": f"job-{version}", "jobDocument": doc})
    assert all(topic == f"$aws/things/t1/jobs/job-{version}/update" for topic, _ in sent)
    return [json.loads(p) for _, p in sent]


def test_success() -> None:
    kernel = FakeKernel()
    statuses = _run(kernel, "1.0.1")
    assert [s["status"] for s in statuses] == ["IN_PROGRESS", "SUCCEEDED"]
    assert statuses[-1]["statusDetails"] == {"detailed-deployment-status": "SUCCESSFUL"}
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


def test_unusable_document_is_rejected() -> None:
    kernel = FakeKernel()
    sent: list[bytes] = []
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", lambda t, p: sent.append(p)))
    service._run({"jobId": "j", "jobDocument": {"components": {MODEL: {}}}})
    assert json.loads(sent[-1])["status"] == "REJECTED"


def test_duplicate_job_messages_are_queued_once() -> None:
    kernel = FakeKernel()
    service = DeploymentService(kernel, DeploymentStatusKeeper("t1", lambda t, p: None))
    msg = json.dumps({"execution": {"jobId": "j1", "jobDocument": {"components": {}}}}).encode()
    service.on_job_message("x", msg)
    service.on_job_message("x", msg)
    service.on_job_message("x", b'{"timestamp": 1}')
    assert service._queue.qsize() == 1
