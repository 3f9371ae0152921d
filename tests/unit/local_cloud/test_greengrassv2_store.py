"""Persistence: typed records written on every change and read back as they were, including a
state file written before the records were typed (format 1)."""

from __future__ import annotations

import json
from pathlib import Path

from local_cloud.services.greengrassv2.arns import Target
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.models import ComponentState, DeploymentStatus, ExecutionStatus
from local_cloud.services.greengrassv2.store import FORMAT, StateFile
from tests.unit.local_cloud.conftest import ARNS, Clock, FakeDirectory, deployable, group_arn, make_backend


def test_every_change_is_saved_and_restored(tmp_path: Path, directory: FakeDirectory, clock: Clock) -> None:
    store = StateFile(tmp_path / "greengrassv2" / "state.json")
    backend = make_backend(directory, clock, store)
    deployable(backend, "com.a")
    directory.add("t1", "fleet")
    deployment, _ = backend.create_deployment(
        Target.parse(group_arn("fleet")), components={"com.a": {"componentVersion": "1.0.0"}}, tags={"k": "v"}
    )
    JobsDataPlane(backend).update_execution("t1", deployment.job_id, "IN_PROGRESS", {"step": "1"})
    JobsDataPlane(backend).report_health(
        "t1", {"components": [{"componentName": "com.a", "state": "RUNNING"}]}
    )
    assert json.loads(store.path.read_text())["format"] == FORMAT

    restored = make_backend(directory, clock, store)
    assert restored.snapshot() == backend.snapshot()
    assert restored.component_version(ARNS.component("com.a", "1.0.0")).state is ComponentState.DEPLOYABLE
    again = restored.deployment(deployment.deployment_id)
    assert again.job_document() == deployment.job_document() and again.target == deployment.target
    assert restored.executions.find("t1", deployment.job_id).status is ExecutionStatus.IN_PROGRESS


ARN = ARNS.component("com.a", "1.0.0")
RECIPE = {"RecipeFormatVersion": "2020-01-25", "ComponentName": "com.a", "ComponentVersion": "1.0.0"}
TARGET = group_arn("fleet")
CONFIG = "arn:aws:greengrass:us-east-1:123456789012:configuration:thinggroup/fleet:1"
#: As the untyped provider wrote it: API-shaped dicts, ``_``-prefixed private keys, executions
#: keyed by deployment without their job id, statusDetails already interpreted.
LEGACY = {
    "components": {
        "com.a": {
            "1.0.0": {
                "arn": ARN,
                "componentName": "com.a",
                "componentVersion": "1.0.0",
                "creationTimestamp": 10.0,
                "publisher": "",
                "description": "",
                "platforms": [],
                "status": {
                    "componentState": "DEPLOYABLE",
                    "message": "NONE",
                    "errors": {},
                    "vendorGuidance": "ACTIVE",
                    "vendorGuidanceMessage": "",
                },
                "_recipe": RECIPE,
            }
        }
    },
    "deployments": {
        "d1": {
            "targetArn": TARGET,
            "revisionId": "1",
            "deploymentId": "d1",
            "deploymentName": "first",
            "deploymentStatus": "ACTIVE",
            "iotJobId": "j1",
            "iotJobArn": "arn:aws:iot:us-east-1:123456789012:job/j1",
            "components": {"com.a": {"componentVersion": "1.0.0"}},
            "deploymentPolicies": {
                "failureHandlingPolicy": "ROLLBACK",
                "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
                "configurationValidationPolicy": {"timeoutInSeconds": 30},
            },
            "iotJobConfiguration": {},
            "creationTimestamp": 20.0,
            "isLatestForTarget": True,
            "parentTargetArn": None,
            "jobDocument": {"deploymentId": "d1", "configurationArn": CONFIG},
            "_targetKind": "thinggroup",
            "_targetName": "fleet",
        }
    },
    "executions": {
        "t1": {
            "d1": {
                "deploymentId": "d1",
                "status": "FAILED",
                "reason": "startup script exited 1",
                "queuedAt": 20.0,
                "startedAt": 21.0,
                "modifiedTimestamp": 22.0,
                "executionNumber": 1,
                "versionNumber": 3,
                "statusDetails": {
                    "detailedDeploymentStatus": "FAILED_ROLLBACK_COMPLETE",
                    "errorStack": ["DEPLOYMENT_FAILURE"],
                    "errorTypes": [],
                },
            }
        }
    },
    "core_devices": {
        "t1": {
            "coreDeviceThingName": "t1",
            "status": "HEALTHY",
            "lastStatusUpdateTimestamp": 23.0,
            "coreVersion": None,
            "platform": None,
            "architecture": None,
            "runtime": None,
            "components": [],
        }
    },
    "revisions": {TARGET: 1},
    "client_tokens": {"tok": "d1"},
    "tags": {ARN: {"k": "v"}},
}


def test_format_1_state_is_upgraded(tmp_path: Path, directory: FakeDirectory, clock: Clock) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(LEGACY))
    backend = make_backend(directory, clock, StateFile(path))

    assert backend.component_version(ARN).recipe == RECIPE and backend.tags_of(ARN) == {"k": "v"}
    deployment = backend.deployment("d1")
    assert deployment.status is DeploymentStatus.ACTIVE and deployment.configuration_arn == CONFIG
    [effective] = backend.effective_deployments("t1")
    assert effective["coreDeviceExecutionStatus"] == "FAILED"
    assert effective["reason"] == "startup script exited 1"
    assert effective["statusDetails"] == {"errorStack": ["DEPLOYMENT_FAILURE"]}
    assert backend.executions.find("t1", "j1").version == 3
    again, _ = backend.create_deployment(Target.parse(TARGET), client_token="tok")
    assert again is deployment


def test_a_rollout_goes_on_after_a_restart(tmp_path: Path, directory: FakeDirectory, clock: Clock) -> None:
    """What was released stays released, what waits keeps waiting, the minute count goes on."""
    store = StateFile(tmp_path / "greengrassv2" / "state.json")
    backend = make_backend(directory, clock, store)
    for thing in ("t1", "t2", "t3"):
        directory.add(thing, "fleet")
    config = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}}
    deployment, notified = backend.create_deployment(Target.parse(TARGET), job_configuration=config)
    assert notified == ["t1", "t2"]
    restored = make_backend(directory, clock, store)
    assert restored.snapshot() == backend.snapshot()
    plane = JobsDataPlane(restored)
    assert plane.next_execution("t3") is None and plane.next_execution("t1") is not None
    assert plane.advance() == []  # still the first minute: its two are spent
    clock.advance(60)
    assert plane.advance() == ["t3"]
    assert restored.deployment(deployment.deployment_id).rollout.notified == 3  # type: ignore[union-attr]
