"""The greengrassv2 backend's rules, on in-memory records: component versions, deployments,
effective deployments per device."""

from __future__ import annotations

import base64
import hashlib

import pytest

from local_cloud.services.greengrassv2.arns import Target
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from local_cloud.services.greengrassv2.models import (
    ComponentState,
    DeploymentStatus,
    ExecutionStatus,
    GreengrassBackend,
)
from tests.unit.local_cloud.conftest import (
    ARNS,
    Clock,
    FakeDirectory,
    deployable,
    group_arn,
    recipe,
    thing_arn,
)

# -- component versions ------------------------------------------------------------------------


def test_component_version_requested_initiated_deployable_with_digests(backend: GreengrassBackend) -> None:
    record, created = backend.create_component_version(recipe("com.a", "1.0.0", "s3://b/k"), {"t": "1"}, None)
    assert created and record.state is ComponentState.REQUESTED
    assert record.created_summary()["status"]["componentState"] == "REQUESTED"
    assert record.platforms == [{"name": "linux", "attributes": {"os": "linux"}}]
    seen: list[ComponentState] = []

    def fetch(uri: str) -> bytes:
        seen.append(backend.component_version(record.arn).state)
        return b"bytes of " + uri.encode()

    backend.process_component(record.arn, fetch)
    assert seen == [ComponentState.INITIATED]
    assert record.state is ComponentState.DEPLOYABLE and record.message == "NONE"
    [artifact] = record.recipe["Manifests"][0]["Artifacts"]
    assert artifact["Digest"] == base64.b64encode(hashlib.sha256(b"bytes of s3://b/k").digest()).decode()
    assert backend.tags_of(record.arn) == {"t": "1"}


def test_unreadable_artifact_fails_the_version_naming_it(backend: GreengrassBackend) -> None:
    record, _ = backend.create_component_version(recipe("com.a", "1.0.0", "s3://b/gone"), None, None)

    def fetch(uri: str) -> bytes:
        raise KeyError(uri)

    backend.process_component(record.arn, fetch)
    assert record.state is ComponentState.FAILED
    assert "s3://b/gone" in record.message and set(record.errors) == {"s3://b/gone"}


def test_same_version_conflicts_unless_same_client_token(backend: GreengrassBackend) -> None:
    first, created = backend.create_component_version(recipe("com.a", "1.0.0"), None, "token-1")
    again, created_again = backend.create_component_version(recipe("com.a", "1.0.0"), None, "token-1")
    assert created and not created_again and again is first
    with pytest.raises(ConflictException):
        backend.create_component_version(recipe("com.a", "1.0.0"), None, "token-2")


def test_versions_listing_latest_resolution_and_delete(backend: GreengrassBackend, clock: Clock) -> None:
    for version in ("1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1"):
        deployable(backend, "com.a", version)
        clock.advance(1)
    component = ARNS.component("com.a")
    assert [r.version for r in backend.component_versions(component)] == [
        "2.0.0-rc.1",
        "1.2.0",
        "1.10.0",
        "1.0.0",
    ]
    assert [r.version for r in backend.latest_components()] == ["2.0.0-rc.1"]

    def resolve(**candidate: object) -> str:
        [resolved] = backend.resolve_candidates([{"componentName": "com.a", **candidate}])
        return resolved.version

    assert resolve(versionRequirements={"x": "^1.0.0"}) == "1.10.0"
    assert resolve(componentVersion="1.2.0", versionRequirements={"x": ">=1.0.0"}) == "1.2.0"
    with pytest.raises(ResourceNotFoundException):
        resolve(componentVersion="1.2.0", versionRequirements={"x": "~1.10.0"})
    backend.delete_component(ARNS.component("com.a", "2.0.0-rc.1"))
    assert [r.version for r in backend.latest_components()] == ["1.10.0"]
    with pytest.raises(ValidationException):
        backend.component_versions(ARNS.component("com.a", "1.0.0"))
    with pytest.raises(ResourceNotFoundException):
        backend.component_versions(ARNS.component("com.none"))


def test_only_deployable_versions_resolve(backend: GreengrassBackend) -> None:
    backend.create_component_version(recipe("com.a", "1.0.0"), None, None)  # still REQUESTED
    with pytest.raises(ResourceNotFoundException):
        backend.resolve_candidates([{"componentName": "com.a"}])


# -- deployment creation -----------------------------------------------------------------------


def _group(directory: FakeDirectory, name: str, *things: str) -> Target:
    directory.groups.setdefault(name, set())
    for thing in things:
        directory.add(thing, name)
    return Target.parse(group_arn(name))


@pytest.mark.parametrize(
    ("arn", "resource_type"),
    [(group_arn("no-group"), "THING_GROUP"), (thing_arn("no-thing"), "THING")],
)
def test_deployment_target_must_exist(backend: GreengrassBackend, arn: str, resource_type: str) -> None:
    with pytest.raises(ResourceNotFoundException) as missing:
        backend.create_deployment(Target.parse(arn), components={})
    assert missing.value.fields["resourceType"] == resource_type and missing.value.fields["resourceId"] == arn


def test_deployment_components_must_exist_and_be_deployable(
    backend: GreengrassBackend, directory: FakeDirectory
) -> None:
    target = _group(directory, "fleet", "t1")
    with pytest.raises(ResourceNotFoundException) as missing:
        backend.create_deployment(target, components={"com.a": {"componentVersion": "1.0.0"}})
    assert missing.value.fields["resourceType"] == "COMPONENT_VERSION"
    backend.create_component_version(recipe("com.a", "1.0.0"), None, None)
    with pytest.raises(ValidationException, match="is REQUESTED, not DEPLOYABLE"):
        backend.create_deployment(target, components={"com.a": {"componentVersion": "1.0.0"}})
    deployment, touched = backend.create_deployment(
        target, components={"aws.greengrass.Nucleus": {"componentVersion": "2.12.0"}}
    )  # public components are not stored locally, so not checked
    assert touched == ["t1"] and deployment.status is DeploymentStatus.ACTIVE
    with pytest.raises(ValidationException):
        Target.parse("arn:aws:iot:us-east-1:123456789012:bucket/x")


def test_deployment_record_and_job_document(backend: GreengrassBackend, directory: FakeDirectory) -> None:
    deployable(backend, "com.a")
    target = _group(directory, "fleet", "t2", "t1")
    deployment, touched = backend.create_deployment(
        target,
        components={"com.a": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{}"}}},
        policies={"componentUpdatePolicy": {"timeoutInSeconds": 30}},
        job_configuration={"timeoutConfig": {"inProgressTimeoutInMinutes": 5}},
        tags={"k": "v"},
    )
    assert touched == ["t1", "t2"]
    assert deployment.name == "Deployment for fleet" and deployment.revision == 1
    assert deployment.job_arn == f"arn:aws:iot:us-east-1:123456789012:job/{deployment.job_id}"
    assert deployment.to_dict()["deploymentPolicies"] == {
        "failureHandlingPolicy": "ROLLBACK",
        "componentUpdatePolicy": {"timeoutInSeconds": 30, "action": "NOTIFY_COMPONENTS"},
        "configurationValidationPolicy": {"timeoutInSeconds": 30},
    }
    document = deployment.job_document()
    assert document["configurationArn"] == ARNS.configuration(target, 1)
    assert document["groupName"] == "thinggroup/fleet"
    assert document["components"] == {
        "com.a": {"version": "1.0.0", "configurationUpdate": {"merge": "{}"}, "runWith": {}}
    }
    assert document["componentUpdatePolicy"] == {"timeout": 30, "action": "NOTIFY_COMPONENTS"}
    assert backend.tags_of(ARNS.deployment(deployment.deployment_id)) == {"k": "v"}
    assert [e.status for t in ("t1", "t2") for e in backend.executions.of_thing(t)] == [
        ExecutionStatus.QUEUED
    ] * 2


def test_client_token_returns_the_first_deployment(
    backend: GreengrassBackend, directory: FakeDirectory
) -> None:
    target = _group(directory, "fleet", "t1")
    first, _ = backend.create_deployment(target, client_token="tok")
    again, touched = backend.create_deployment(target, client_token="tok")
    assert again is first and touched == [] and len(backend.deployments) == 1


def test_newer_deployment_supersedes_and_cancels_only_queued(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane
) -> None:
    target = _group(directory, "fleet", "busy", "idle")
    old, _ = backend.create_deployment(target)
    plane.update_execution("busy", old.job_id, "IN_PROGRESS")
    new, touched = backend.create_deployment(target)
    assert touched == ["busy", "idle"] and new.revision == 2
    assert (old.is_latest, old.status) == (False, DeploymentStatus.INACTIVE)
    assert backend.executions.get("busy", old.deployment_id).status is ExecutionStatus.IN_PROGRESS
    idle_old = backend.executions.get("idle", old.deployment_id)
    assert idle_old.status is ExecutionStatus.CANCELED
    assert idle_old.reason == "superseded by a newer deployment to the same target"
    assert [d.deployment_id for d in backend.list_deployments(target.arn, None, True)] == [new.deployment_id]
    assert len(backend.list_deployments(target.arn, None, False)) == 2


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("SUCCEEDED", DeploymentStatus.COMPLETED),
        ("FAILED", DeploymentStatus.FAILED),
        ("REJECTED", DeploymentStatus.FAILED),
        ("IN_PROGRESS", DeploymentStatus.ACTIVE),
    ],
)
def test_thing_deployment_ends_with_its_device_group_one_stays_active(
    backend: GreengrassBackend,
    directory: FakeDirectory,
    plane: JobsDataPlane,
    result: str,
    expected: DeploymentStatus,
) -> None:
    directory.add("t1", "fleet")
    single, _ = backend.create_deployment(Target.parse(thing_arn("t1")))
    group, _ = backend.create_deployment(Target.parse(group_arn("fleet")))
    plane.update_execution("t1", single.job_id, result)
    plane.update_execution("t1", group.job_id, result)
    assert single.status is expected and group.status is DeploymentStatus.ACTIVE


def test_cancel_and_delete_rules(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane
) -> None:
    target = _group(directory, "fleet", "a", "b")
    deployment, _ = backend.create_deployment(target)
    plane.update_execution("a", deployment.job_id, "IN_PROGRESS")
    with pytest.raises(ConflictException, match="Cancel the deployment"):
        backend.delete_deployment(deployment.deployment_id)
    assert backend.cancel_deployment(deployment.deployment_id) == ["a", "b"]
    assert deployment.status is DeploymentStatus.CANCELED
    assert {e.status for t in "ab" for e in backend.executions.of_thing(t)} == {ExecutionStatus.CANCELED}
    with pytest.raises(ConflictException):
        backend.cancel_deployment(deployment.deployment_id)
    backend.delete_deployment(deployment.deployment_id)
    assert backend.executions.of_thing("a") == []
    with pytest.raises(ResourceNotFoundException):
        backend.deployment(deployment.deployment_id)


# -- effective deployments per device ----------------------------------------------------------


def test_effective_deployments_need_a_known_device(backend: GreengrassBackend) -> None:
    with pytest.raises(ResourceNotFoundException):
        backend.effective_deployments("never-seen")


def test_late_group_member_gets_the_live_deployment_only(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane
) -> None:
    target = _group(directory, "fleet")
    old, _ = backend.create_deployment(target)
    live, _ = backend.create_deployment(target)
    plane.seen("late")
    assert backend.effective_deployments("late") == []  # not a member yet
    directory.add("late", "fleet")
    [effective] = backend.effective_deployments("late")
    assert (
        effective["deploymentId"] == live.deployment_id and effective["coreDeviceExecutionStatus"] == "QUEUED"
    )
    assert effective["targetArn"] == target.arn and effective["reason"] is None
    assert backend.executions.get("late", old.deployment_id) is None


def test_effective_deployment_fields_from_the_nucleus_report(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane, clock: Clock
) -> None:
    directory.add("t1")
    target = Target.parse(thing_arn("t1"))
    first, _ = backend.create_deployment(target)
    plane.update_execution("t1", first.job_id, "SUCCEEDED", {"detailed-deployment-status": "SUCCESSFUL"})
    clock.advance(5)
    second, _ = backend.create_deployment(target)
    clock.advance(1)
    plane.update_execution(
        "t1",
        second.job_id,
        "FAILED",
        {
            "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
            "deployment-failure-cause": "startup script exited 1",
            "deployment-error-stack": '["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR"]',
            "deployment-error-types": '["COMPONENT_ERROR"]',
        },
    )
    newest, oldest = backend.effective_deployments("t1")
    assert (newest["deploymentId"], oldest["deploymentId"]) == (second.deployment_id, first.deployment_id)
    assert newest["reason"] == "startup script exited 1" and newest["modifiedTimestamp"] == clock.now
    assert newest["statusDetails"] == {
        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR"],
        "errorTypes": ["COMPONENT_ERROR"],
    }
    assert oldest["reason"] == "SUCCESSFUL" and oldest["statusDetails"] is None


def test_cloud_reason_wins_over_the_device_details(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane
) -> None:
    target = _group(directory, "fleet", "t1")
    deployment, _ = backend.create_deployment(target)
    plane.update_execution("t1", deployment.job_id, "IN_PROGRESS", {"detailed-deployment-status": "x"})
    backend.cancel_deployment(deployment.deployment_id)
    [effective] = backend.effective_deployments("t1")
    assert effective["coreDeviceExecutionStatus"] == "CANCELED"
    assert effective["reason"] == "the deployment was canceled"


def test_core_devices_by_group_and_status(
    backend: GreengrassBackend, directory: FakeDirectory, plane: JobsDataPlane
) -> None:
    directory.add("a", "fleet")
    directory.add("b")
    plane.seen("a")
    plane.report_health("b", {"overallDeviceStatus": "UNHEALTHY", "components": []})
    assert [d.thing for d in backend.core_devices(None, None)] == ["a", "b"]
    assert [d.thing for d in backend.core_devices(Target.parse(group_arn("fleet")), None)] == ["a"]
    assert [d.thing for d in backend.core_devices(Target.parse(group_arn("gone")), None)] == []
    assert [d.thing for d in backend.core_devices(None, "UNHEALTHY")] == ["b"]
    assert (
        backend.core_device("a").runtime is None and backend.core_device("b").runtime == "aws_nucleus_classic"
    )
    backend.delete_core_device("a")
    with pytest.raises(ResourceNotFoundException):
        backend.core_device("a")
