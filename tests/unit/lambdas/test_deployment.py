"""Deploy / CheckDeployment: the request (validated by botocore's model), per-device verdicts in S3,
bounded summaries in the state document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY

from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.detail import read_detail
from lambdas.core.exceptions import ConfigurationError, DeploymentFailed, DeploymentTimedOut, NoDevices

from .conftest import BUCKET, assert_selectable, stubbed
from .fakes import FakeGreengrass

COMPONENTS = {
    "model": {"name": "com.example.test.Model", "version": "1.0.3"},
    "inference": {"name": "com.example.test.Inference", "version": "1.0.77"},
}


def add_things(iot: Any, *names: str) -> None:
    for name in names:
        iot.create_thing(thingName=name)
        iot.add_thing_to_thing_group(thingGroupName="edge-fleet", thingName=name)


def test_deploy_targets_the_group_with_rollback_and_job_policies(
    iot: Any, s3: Any, config: dict[str, Any]
) -> None:
    add_things(iot, "core-b", "core-a")
    config["components"]["inference_configuration"] = {"TelemetryIntervalSeconds": 5}
    config["monitoring"] = {"window_s": 60}
    greengrass, stub = stubbed("greengrassv2")
    expected = {
        "targetArn": iot.describe_thing_group(thingGroupName="edge-fleet")["thingGroupArn"],
        "deploymentName": "com.example.test-exec-1",
        "components": {
            "com.example.test.Model": {"componentVersion": "1.0.3"},
            "com.example.test.Inference": {
                "componentVersion": "1.0.77",
                "configurationUpdate": {
                    "merge": json.dumps(
                        {"MonitoringWindowSeconds": 60, "TelemetryIntervalSeconds": 5}, sort_keys=True
                    )
                },
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
    out = deploy({"config": config, "components": COMPONENTS}, greengrass=greengrass, iot=iot, s3=s3)
    stub.assert_no_pending_responses()
    assert_selectable("deploy", out)
    assert out["deployment_id"] == "d-1" and out["device_count"] == 2
    assert out["components"] == {"com.example.test.Model": "1.0.3", "com.example.test.Inference": "1.0.77"}
    # The targeted devices are in S3 under the execution's state prefix, not in the document.
    assert out["devices_uri"] == f"s3://{BUCKET}/state/executions/exec-1/deployment-targets.json"
    targets = read_detail(s3, out["devices_uri"])
    assert targets is not None and targets["devices"] == ["core-a", "core-b"]
    assert targets["deployment_id"] == "d-1"


def test_empty_group_is_no_devices(iot: Any, s3: Any, config: dict[str, Any]) -> None:
    with pytest.raises(NoDevices, match="edge-fleet"):
        deploy({"config": config, "components": COMPONENTS}, greengrass=FakeGreengrass(), iot=iot, s3=s3)


def test_missing_group_is_a_configuration_error(iot: Any, s3: Any, config: dict[str, Any]) -> None:
    config["deployment"]["thing_group"] = "nope"
    with pytest.raises(ConfigurationError, match="nope"):
        deploy({"config": config, "components": COMPONENTS}, greengrass=FakeGreengrass(), iot=iot, s3=s3)


def effective(deployment_id: str, status: str, detailed: str = "", **extra: Any) -> dict[str, Any]:
    details = {"detailedDeploymentStatus": detailed} if detailed else {}
    details.update(extra)
    return {"deploymentId": deployment_id, "coreDeviceExecutionStatus": status, "statusDetails": details}


@pytest.fixture
def event(config: dict[str, Any]) -> dict[str, Any]:
    return {"config": config, "deployment": {"deployment_id": "d-2", "thing_group": "edge-fleet"}}


STATUS_URI = f"s3://{BUCKET}/state/executions/exec-1/deployment-status.json"


def test_in_progress_until_every_device_succeeded(iot: Any, s3: Any, event: dict[str, Any]) -> None:
    add_things(iot, "core-a", "core-b", "core-c")
    gg = FakeGreengrass()
    gg.effective = {
        "core-a": [effective("d-1", "FAILED"), effective("d-2", "SUCCEEDED", "SUCCESSFUL")],
        "core-b": [effective("d-2", "IN_PROGRESS")],
    }
    gg.unknown = {"core-c"}
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert_selectable("check_deployment", out)
    assert out["status"] == "IN_PROGRESS" and out["devices_uri"] == STATUS_URI
    assert out["counts"] == {"targeted": 3, "succeeded": 1, "failed": 0, "in_progress": 1, "pending": 1}
    # Unfinished devices are named with their reason: the DeploymentTimedOut cause quotes the summary.
    assert out["summary"] == (
        # core-c: no core device and no presence record (docs/contracts.md "Device presence")
        "1 in_progress, 1 pending, 1 succeeded of 3; waiting for core-b: IN_PROGRESS; core-c: PENDING "
        f"(never connected) (every device: {STATUS_URI})"
    )
    assert [d["thing"] for d in out["unfinished"]] == ["core-b", "core-c"]
    detail = read_detail(s3, STATUS_URI)
    assert detail is not None and detail["deployment_id"] == "d-2"
    assert [d["status"] for d in detail["devices"]] == ["SUCCEEDED", "IN_PROGRESS", "PENDING"]
    gg.unknown = set()
    gg.effective["core-b"] = [effective("d-2", "SUCCEEDED")]
    gg.effective["core-c"] = [effective("d-2", "COMPLETED", "SUCCESSFUL")]
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "SUCCEEDED" and out["unfinished"] == []
    assert out["summary"] == "3 succeeded of 3"


def test_a_later_check_asks_only_about_devices_not_finished(iot: Any, s3: Any, event: dict[str, Any]) -> None:
    add_things(iot, "core-a", "core-b")
    gg = FakeGreengrass()
    gg.effective = {"core-a": [effective("d-2", "SUCCEEDED")], "core-b": [effective("d-2", "IN_PROGRESS")]}
    check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert sorted(gg.asked) == ["core-a", "core-b"]
    gg.asked.clear()
    gg.effective["core-b"] = [effective("d-2", "SUCCEEDED")]
    assert check_deployment(event, greengrass=gg, iot=iot, s3=s3)["status"] == "SUCCEEDED"
    assert gg.asked == ["core-b"]
    # Another deployment's record is not reused.
    event["deployment"]["deployment_id"] = "d-3"
    gg.asked.clear()
    check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert sorted(gg.asked) == ["core-a", "core-b"]


def test_a_device_that_rolled_back_fails_with_its_reason(iot: Any, s3: Any, event: dict[str, Any]) -> None:
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
        check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    message = str(info.value)
    assert "1 of 2" in message and "core-b" in message and "FAILED_ROLLBACK_COMPLETE" in message
    assert (
        "ARTIFACT_CHECKSUM_MISMATCH" in message and "digest mismatch" in message and "core-a" not in message
    )
    assert STATUS_URI in message
    # A long reason is cut in its middle: the error stack Greengrass puts last survives.
    gg.effective["core-b"][0]["reason"] = "artifact s3://b/model.zip has digest " + "x" * 600
    with pytest.raises(DeploymentFailed) as info:
        check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert "ARTIFACT_CHECKSUM_MISMATCH" in str(info.value) and "x" * 500 not in str(info.value)
    detail = read_detail(s3, STATUS_URI)
    assert detail is not None and detail["status"] == "FAILED"
    assert [d["status"] for d in detail["devices"]] == ["SUCCEEDED", "FAILED"]


def test_many_failed_devices_are_counted_and_ten_are_named(iot: Any, s3: Any, event: dict[str, Any]) -> None:
    things = [f"core-{i:02d}" for i in range(25)]
    add_things(iot, *things)
    gg = FakeGreengrass()
    gg.effective = {t: [effective("d-2", "TIMED_OUT")] for t in things}
    with pytest.raises(DeploymentFailed) as info:
        check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    message = str(info.value)
    assert "failed on 25 of 25 device(s)" in message and "and 15 more" in message
    assert "core-09: TIMED_OUT: no result within the IoT job's in-progress timeout" in message
    assert "core-10" not in message and len(message) < 5000
    detail = read_detail(s3, STATUS_URI)
    assert detail is not None and len(detail["devices"]) == 25


def test_a_device_that_never_reports_fails_the_check_at_the_time_budget(
    iot: Any, s3: Any, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 5: the budget is time since CreateDeployment (poll.deployment.timeout_s), not
    a count of polls; the failure names each stalled device with its last contact."""
    import lambdas.core.deployment as deployment_module

    clock = {"now": 1_800_000_000.0}
    monkeypatch.setattr(deployment_module.time, "time", lambda: clock["now"])
    add_things(iot, "core-a", "core-b", "core-c")
    gg = FakeGreengrass()
    config["poll"]["deployment"] = {"interval_s": 10, "timeout_s": 600, "max_polls": 10_000}
    started = deploy({"config": config, "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3)
    event = {"config": config, "deployment": started}
    seen = clock["now"] + 5  # core-b took the deployment, then went silent
    gg.effective = {
        "core-a": [effective("dep-1", "SUCCEEDED", "SUCCESSFUL")],
        "core-b": [{**effective("dep-1", "IN_PROGRESS"), "modifiedTimestamp": seen}],
        # core-c: known to Greengrass, never reports anything for this deployment
    }
    clock["now"] += 599
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "IN_PROGRESS"  # within the budget: still waiting, however many polls
    clock["now"] += 1
    with pytest.raises(DeploymentTimedOut) as info:
        check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    message = str(info.value)
    assert "not finished on 2 of 3 device(s) within poll.deployment.timeout_s 600 s" in message
    assert "core-b: TIMED_OUT (IN_PROGRESS; last contact 2027-01-15T08:00:05Z (595 s ago)" in message
    assert "core-c: TIMED_OUT (deployment not received yet; no deployment status ever reported" in message
    assert "core-a" not in message
    detail = read_detail(s3, STATUS_URI)
    assert detail is not None and detail["status"] == "TIMED_OUT"
    assert {d["thing"]: d["status"] for d in detail["devices"]} == {
        "core-a": "SUCCEEDED",
        "core-b": "TIMED_OUT",
        "core-c": "TIMED_OUT",
    }


def test_monitoring_window_is_merged_into_the_inference_configuration() -> None:
    """issue 16: ``monitoring.window_s`` becomes MonitoringWindowSeconds (0 = off included); an
    explicit inference_configuration value wins; without a monitoring section nothing is merged."""
    from lambdas.core.deployment import components_spec

    components = {
        "model": {"name": "M", "version": "1.0.1"},
        "inference": {"name": "I", "version": "1.0.2"},
    }

    def merged(config: dict[str, Any]) -> dict[str, Any] | None:
        update = components_spec(config, components)["I"].get("configurationUpdate")
        return json.loads(update["merge"]) if update else None

    assert merged({"components": {}}) is None
    assert merged({"components": {}, "monitoring": {"window_s": 0}}) == {"MonitoringWindowSeconds": 0}
    assert merged({"components": {}, "monitoring": {"window_s": 5}}) == {"MonitoringWindowSeconds": 5}
    explicit = {"inference_configuration": {"MonitoringWindowSeconds": 9}}
    assert merged({"components": explicit, "monitoring": {"window_s": 5}}) == {"MonitoringWindowSeconds": 9}
