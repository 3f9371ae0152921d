"""Deploy / CheckDeployment: the request (validated by botocore's model), per-device verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY

from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.exceptions import ConfigurationError, DeploymentFailed, NoDevices

from .conftest import assert_selectable, stubbed
from .fakes import FakeGreengrass

COMPONENTS = {
    "model": {"name": "com.example.test.Model", "version": "1.0.3"},
    "inference": {"name": "com.example.test.Inference", "version": "1.0.77"},
}


def add_things(iot: Any, *names: str) -> None:
    for name in names:
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName="edge-fleet", thingName=name)


def test_deploy_targets_the_group_with_rollback_and_job_policies(iot: Any, config: dict[str, Any]) -> None:
    add_things(iot, "core-b", "core-a")
    config["components"]["inference_configuration"] = {"TelemetryIntervalSeconds": 5}
    greengrass, stub = stubbed("greengrassv2")
    expected = {
        "targetArn": iot.describe_thing_group(thingGroupName="edge-fleet")["thingGroupArn"],
        "deploymentName": "com.example.test-exec-1",
        "components": {
            "com.example.test.Model": {"componentVersion": "1.0.3"},
            "com.example.test.Inference": {
                "componentVersion": "1.0.77",
                "configurationUpdate": {"merge": json.dumps({"TelemetryIntervalSeconds": 5})},
            },
        },
        "deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": 30},
        },
        "iotJobConfiguration": {
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 100},
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": 10.0,
                        "minNumberOfExecutedThings": 1,
                    }
                ]
            },
            "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
        },
        "clientToken": ANY,
    }
    stub.add_response("create_deployment", {"deploymentId": "d-1"}, expected)
    out = deploy({"config": config, "components": COMPONENTS}, greengrass=greengrass, iot=iot)
    stub.assert_no_pending_responses()
    assert_selectable("deploy", out)
    assert out["deployment_id"] == "d-1" and out["devices"] == ["core-a", "core-b"]
    assert out["components"] == {"com.example.test.Model": "1.0.3", "com.example.test.Inference": "1.0.77"}


def test_empty_group_is_no_devices(iot: Any, config: dict[str, Any]) -> None:
    with pytest.raises(NoDevices, match="edge-fleet"):
        deploy({"config": config, "components": COMPONENTS}, greengrass=FakeGreengrass(), iot=iot)


def test_missing_group_is_a_configuration_error(iot: Any, config: dict[str, Any]) -> None:
    config["deployment"]["thing_group"] = "nope"
    with pytest.raises(ConfigurationError, match="nope"):
        deploy({"config": config, "components": COMPONENTS}, greengrass=FakeGreengrass(), iot=iot)


def effective(deployment_id: str, status: str, detailed: str = "", **extra: Any) -> dict[str, Any]:
    details = {"detailedDeploymentStatus": detailed} if detailed else {}
    details.update(extra)
    return {"deploymentId": deployment_id, "coreDeviceExecutionStatus": status, "statusDetails": details}


def event() -> dict[str, Any]:
    return {"deployment": {"deployment_id": "d-2", "thing_group": "edge-fleet"}}


def test_in_progress_until_every_device_succeeded(iot: Any) -> None:
    add_things(iot, "core-a", "core-b", "core-c")
    gg = FakeGreengrass()
    gg.effective = {
        "core-a": [effective("d-1", "FAILED"), effective("d-2", "SUCCEEDED", "SUCCESSFUL")],
        "core-b": [effective("d-2", "IN_PROGRESS")],
    }
    gg.unknown = {"core-c"}
    out = check_deployment(event(), greengrass=gg, iot=iot)
    assert_selectable("check_deployment", out)
    assert out["status"] == "IN_PROGRESS"
    assert [d["status"] for d in out["devices"]] == ["SUCCEEDED", "IN_PROGRESS", "PENDING"]
    assert out["summary"] == "1 in_progress, 1 pending, 1 succeeded of 3"
    gg.unknown = set()
    gg.effective["core-b"] = [effective("d-2", "SUCCEEDED")]
    gg.effective["core-c"] = [effective("d-2", "COMPLETED", "SUCCESSFUL")]
    assert check_deployment(event(), greengrass=gg, iot=iot)["status"] == "SUCCEEDED"


def test_a_device_that_rolled_back_fails_with_its_reason(iot: Any) -> None:
    add_things(iot, "core-a", "core-b")
    gg = FakeGreengrass()
    gg.effective = {
        "core-a": [effective("d-2", "SUCCEEDED", "SUCCESSFUL")],
        "core-b": [
            {
                **effective(
                    "d-2",
                    "FAILED",
                    "FAILED_ROLLBACK_COMPLETE",
                    errorTypes=["DEPENDENCY_ERROR"],
                    errorStack=["ARTIFACT_CHECKSUM_MISMATCH"],
                ),
                "reason": "digest mismatch",
            }
        ],
    }
    with pytest.raises(DeploymentFailed) as info:
        check_deployment(event(), greengrass=gg, iot=iot)
    message = str(info.value)
    assert "1 of 2" in message and "core-b" in message and "FAILED_ROLLBACK_COMPLETE" in message
    assert (
        "ARTIFACT_CHECKSUM_MISMATCH" in message and "digest mismatch" in message and "core-a" not in message
    )
