"""Deploy, verify on device, promote — and roll back — against simulated Greengrass cores.

Runs after test_execution.py (file order): the devices join the thing group only here, so the
earlier tests still see an empty group. Deploy-only executions (the registered model package) keep
it fast: no training.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Deployed, exited_states, model_package

pytestmark = pytest.mark.integration


def devices_of(deployed: Deployed, root: Any) -> Any:
    """Simulated cores of the deployed stack's fleet group, started as `mlops-edge run` starts them."""
    from mlops_edge.environment.fleet import Fleet

    return Fleet(deployed.cloud, root=root, thing_group=deployed.thing_group, env=deployed.cloud.env())


@pytest.fixture(scope="module")
def fleet(
    deployed: Deployed, trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:

    fleet = devices_of(deployed, tmp_path_factory.mktemp("devices"))
    try:
        fleet.start(1)
        # a bound, not a pace: a fresh clone on a loaded machine took more than 60 s
        missing = fleet.wait_reported(deployed.client("greengrassv2"), timeout_s=180)
        assert not missing, f"devices did not report: {missing}"
        yield fleet
    finally:
        fleet.stop()


def device_input(fast_input: dict[str, Any], deployed: Deployed, **config: Any) -> dict[str, Any]:
    """Deploy-only input; the devices reuse this interpreter instead of building a venv."""
    return {
        **fast_input,
        "model_package_arn": model_package(deployed),
        "components": {"inference_configuration": {"PythonPath": sys.executable, **config}},
    }


def state_output(deployed: Deployed, execution: dict[str, Any], state: str) -> dict[str, Any]:
    events = deployed.history(execution["executionArn"])
    exited = [
        e["stateExitedEventDetails"]
        for e in events
        if e.get("stateExitedEventDetails", {}).get("name") == state
    ]
    return json.loads(exited[-1]["output"])


def test_deploy_verify_promote(deployed: Deployed, fleet: Any, fast_input: dict[str, Any]) -> None:
    execution = deployed.run(device_input(fast_input, deployed))
    assert execution["status"] == "SUCCEEDED", (
        execution.get("error"),
        execution.get("cause"),
        [d.log_path for d in fleet.devices],
    )
    states = exited_states(deployed.history(execution["executionArn"]))
    assert states[-5:] == ["VerifyOnDevice", "EvaluateStage", "StageDone?", "Promote", "PipelineSucceeded"]
    output = json.loads(execution["output"])
    # Per-device results are in S3 under the execution's state prefix; the document has counts.
    assert output["verification"]["counts"]["verified"] == output["deployment"]["device_count"] == 1
    bucket, key = output["verification"]["devices_uri"][5:].split("/", 1)
    assert key.startswith("state/executions/")
    detail = json.loads(deployed.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    (device,) = detail["devices"]
    assert device["matched"] == device["sent"] == 5 and device["latency_ms"]["p99"] is not None
    assert output["deployment_status"]["status"] == "SUCCEEDED"
    assert output["promotion"]["approval_status"] == "Approved"
    package = deployed.client("sagemaker").describe_model_package(ModelPackageName=model_package(deployed))
    assert package["ModelApprovalStatus"] == "Approved"
    lkg = deployed.client("s3").get_object(
        Bucket=deployed.bucket, Key=f"state/{deployed.thing_group}/last-known-good.json"
    )
    assert json.loads(lkg["Body"].read())["model_version"] == "1.0.1"


def test_failed_deployment_rolls_back_to_last_known_good(
    deployed: Deployed, fleet: Any, fast_input: dict[str, Any]
) -> None:
    """A configuration the device cannot run fails on the device; the group gets the good set back."""
    broken = device_input(fast_input, deployed)
    broken["components"]["inference_configuration"]["PythonPath"] = "/nonexistent/python3"
    execution = deployed.run(broken)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeploymentFailed", execution.get("cause")
    cause = execution["cause"]
    assert fleet.devices[0].thing_name in cause and "Rollback: redeployed last known good" in cause
    states = exited_states(deployed.history(execution["executionArn"]))
    assert "Rollback" in states and "VerifyOnDevice" not in states

    # The rollback deployment brings the device back to the verified set.
    from lambdas.core.deployment import device_status

    rollback = state_output(deployed, execution, "Rollback")["rollback"]
    assert rollback["components"][f"{deployed.component_prefix}.Model"] == "1.0.1"
    gg, thing = deployed.client("greengrassv2"), fleet.devices[0].thing_name
    deadline = time.monotonic() + 60
    while (status := device_status(gg, thing, rollback["deployment_id"]))["status"] != "SUCCEEDED":
        assert status["status"] != "FAILED" and time.monotonic() < deadline, status
        time.sleep(0.5)


def test_a_device_that_never_reports_fails_the_deployment_at_its_time_budget(
    deployed: Deployed, fleet: Any, fast_input: dict[str, Any]
) -> None:
    """Issue 13 item 5: a member of the group no core runs for. The deployment fails once
    poll.deployment.timeout_s has passed (not after a count of polls), naming that device and why."""
    ghost = "mlops-edge-ghost-01"
    deployed.cloud.provision_device(ghost, thing_group=deployed.thing_group)
    document = device_input(fast_input, deployed)
    document["poll"]["deployment"] = {"interval_s": 1, "timeout_s": 20, "max_polls": 10_000}
    try:
        started = time.monotonic()
        execution = deployed.run(document)
        elapsed = time.monotonic() - started
    finally:
        deployed.client("iot").remove_thing_from_thing_group(
            thingGroupName=deployed.thing_group, thingName=ghost
        )
    assert execution["status"] == "FAILED"
    failures = [
        e.get("taskFailedEventDetails") or e["lambdaFunctionFailedEventDetails"]
        for e in deployed.history(execution["executionArn"])
        if {"taskFailedEventDetails", "lambdaFunctionFailedEventDetails"} & set(e)
    ]
    assert failures and failures[-1]["error"] == "DeploymentTimedOut", failures
    cause = failures[-1]["cause"]
    assert "within poll.deployment.timeout_s 20 s" in cause
    assert f"{ghost}: TIMED_OUT" in cause and "never contacted the cloud" in cause, cause
    assert fleet.devices[0].thing_name not in cause  # the running device succeeded
    assert elapsed < 120  # the budget, the rollback and verification of nothing: not 10,000 polls


def test_a_failing_canary_stops_the_rollout_and_the_fleet_keeps_its_version(
    deployed: Deployed, fleet: Any, fast_input: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 12: a two-stage rollout whose canary fails its install (the device's fault switch).
    The rollout stops at the canary stage, the rollback goes to the canary group only, and the fleet
    group never receives the new deployment: its device keeps answering with its previous model."""
    from pipeline.mqtt import MqttClient, MqttSettings, request_response

    _ensure_promoted(deployed, fast_input)  # the fleet's device must already serve a model
    iot, gg = deployed.client("iot"), deployed.client("greengrassv2")
    canary_group = f"{deployed.thing_group}-canary"
    steady = fleet.devices[0].thing_name
    before = {
        e["deploymentId"]
        for e in gg.list_effective_deployments(coreDeviceThingName=steady)["effectiveDeployments"]
    }
    canaries = devices_of(deployed, tmp_path_factory.mktemp("canary"))
    canary = "mlops-edge-canary-01"
    document = device_input(fast_input, deployed, TelemetryIntervalSeconds=7)
    document["rollout"] = {"stages": [{"name": "canary", "canary": {"devices": 1}}, {"name": "fleet"}]}
    try:
        canaries.start(names=[canary], faulty={canary})
        # a sticky canary: already in the canary group, so the stage picks it before the fleet's device
        iot.add_thing_to_thing_group(thingGroupName=canary_group, thingName=canary)
        iot.remove_thing_from_thing_group(thingGroupName=deployed.thing_group, thingName=canary)
        assert not canaries.wait_reported(gg, timeout_s=60)
        execution = deployed.run(document)
        states = exited_states(deployed.history(execution["executionArn"]))
        assert "RolloutStopped" in states, (execution.get("error"), execution.get("cause"), states)
        output = state_output(deployed, execution, "RolloutStopped")
    finally:
        canaries.stop()
        for group in (canary_group, deployed.thing_group):
            iot.remove_thing_from_thing_group(thingGroupName=group, thingName=canary)
    assert execution["status"] == "FAILED" and execution["error"] == "DeploymentFailed", execution.get(
        "cause"
    )
    cause = execution["cause"]
    assert canary in cause and "fault injected" in cause and steady not in cause.split(" | ")[0], cause
    assert f"to {canary_group}" in cause and "Stage(s) fleet never received the new version" in cause, cause
    assert states.count("Deploy") == 1 and "VerifyOnDevice" not in states and "Promote" not in states
    canary_row, fleet_row = output["rollout"]["stages"]
    assert (canary_row["name"], canary_row["thing_group"], canary_row["status"]) == (
        "canary",
        canary_group,
        "FAILED",
    )
    assert (canary_row["targeted"], canary_row["failed"]) == (1, 1)
    assert (fleet_row["name"], fleet_row["status"], fleet_row["deployment_id"]) == ("fleet", "SKIPPED", None)

    # the fleet group got no deployment from this execution; its device has no new effective one
    rollout_name = f"{deployed.component_prefix}-{execution['name']}"
    fleet_arn = iot.describe_thing_group(thingGroupName=deployed.thing_group)["thingGroupArn"]
    names = [
        d["deploymentName"]
        for d in gg.list_deployments(targetArn=fleet_arn, historyFilter="ALL")["deployments"]
    ]
    assert not [n for n in names if n.startswith(rollout_name)], names
    after = gg.list_effective_deployments(coreDeviceThingName=steady)["effectiveDeployments"]
    assert {e["deploymentId"] for e in after} == before
    # ... and still answers golden requests over MQTT with its previous model (1.0.1)
    golden = json.loads(
        deployed.client("s3").get_object(Bucket=deployed.bucket, Key=_golden_key(deployed))["Body"].read()
    )
    with MqttClient(MqttSettings.from_env(deployed.cloud.env())) as client:
        answers = request_response(
            client,
            request_topic=f"edge/{steady}/inference/request",
            result_topic=f"edge/{steady}/inference/result",
            requests=[{"id": "after-canary", "rows": [golden["rows"][0]]}],
            timeout_s=15,
        )
    answer, _ = answers["after-canary"]
    assert answer["ok"] and answer["model"]["version"] == "1.0.1", answer


def test_a_canary_then_the_fleet_rollout_succeeds_and_approves_with_both_groups(
    deployed: Deployed, fleet: Any, fast_input: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 12, the happy path on real cores: a healthy canary stage, then the fleet stage, both
    verified; Promote records last known good for both groups and approves the package with both
    groups in its customer metadata (a value SageMaker accepts: the local cloud refuses a comma)."""

    _ensure_promoted(deployed, fast_input)
    iot, sagemaker = deployed.client("iot"), deployed.client("sagemaker")
    canary_group, canary = f"{deployed.thing_group}-canary", "mlops-edge-canary-02"
    package = model_package(deployed)
    # a package a person has not approved yet, so this execution's Promote approves it
    sagemaker.update_model_package(ModelPackageArn=package, ModelApprovalStatus="PendingManualApproval")
    document = device_input(fast_input, deployed)
    document["rollout"] = {"stages": [{"name": "canary", "canary": {"devices": 1}}, {"name": "fleet"}]}
    canaries = devices_of(deployed, tmp_path_factory.mktemp("healthy-canary"))
    try:
        canaries.start(names=[canary])
        iot.add_thing_to_thing_group(thingGroupName=canary_group, thingName=canary)  # a sticky canary
        iot.remove_thing_from_thing_group(thingGroupName=deployed.thing_group, thingName=canary)
        assert not canaries.wait_reported(deployed.client("greengrassv2"), timeout_s=60)
        execution = deployed.run(document)
    finally:
        canaries.stop()
        for group in (canary_group, deployed.thing_group):
            iot.remove_thing_from_thing_group(thingGroupName=group, thingName=canary)
    assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))
    output = json.loads(execution["output"])
    rows = [(r["name"], r["thing_group"], r["status"], r["verified"]) for r in output["rollout"]["stages"]]
    assert rows == [("canary", canary_group, "SUCCEEDED", 1), ("fleet", deployed.thing_group, "SUCCEEDED", 1)]
    described = sagemaker.describe_model_package(ModelPackageName=package)
    assert described["ModelApprovalStatus"] == "Approved"
    metadata = described["CustomerMetadataProperties"]
    assert metadata["verified_thing_group"] == f"{canary_group} {deployed.thing_group}"
    assert "golden_uri" in metadata  # the registry's own keys are kept
    for group in (canary_group, deployed.thing_group):
        body = deployed.client("s3").get_object(
            Bucket=deployed.bucket, Key=f"state/{group}/last-known-good.json"
        )
        assert json.loads(body["Body"].read())["model_version"] == "1.0.1"


def _ensure_promoted(deployed: Deployed, fast_input: dict[str, Any]) -> None:
    """Deploy and promote once, unless an earlier test of this module did (run alone, the canary
    test would otherwise find no model on the fleet's device)."""
    from botocore.exceptions import ClientError

    try:
        deployed.client("s3").head_object(
            Bucket=deployed.bucket, Key=f"state/{deployed.thing_group}/last-known-good.json"
        )
    except ClientError:
        execution = deployed.run(device_input(fast_input, deployed))
        assert execution["status"] == "SUCCEEDED", (execution.get("error"), execution.get("cause"))


def _golden_key(deployed: Deployed) -> str:
    """The golden set of the registered model (its package's customer metadata names it)."""
    package = deployed.client("sagemaker").describe_model_package(ModelPackageName=model_package(deployed))
    uri = package["CustomerMetadataProperties"]["golden_uri"]
    return uri.split("/", 3)[3]


def test_a_device_killed_mid_rollout_is_named_offline_within_the_stage_timeout(
    deployed: Deployed, fleet: Any, fast_input: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 12: the broker's lifecycle events reach S3 through the CDK app's presence rule (the
    local rules engine's s3 action, as its IAM role), and CheckDeployment names a core killed
    (SIGKILL, by PID) once the stage started as offline, with its disconnect time and reason,
    after the grace period (a quarter of the 60 s budget) instead of at the time budget."""
    import os
    import signal
    import uuid

    from lambdas.core.presence import last_event

    s3, sfn = deployed.client("s3"), deployed.client("stepfunctions")
    victim, steady = "mlops-edge-offline-01", fleet.devices[0].thing_name
    presence = {"bucket": deployed.bucket, "state_prefix": "state/"}  # the reader's config
    document = {"dataset": dict(deployed.dataset), **device_input(fast_input, deployed)}
    document["poll"]["deployment"] = {"interval_s": 1, "timeout_s": 60, "max_polls": 10_000}
    doomed = devices_of(deployed, tmp_path_factory.mktemp("offline"))
    try:
        (device,) = doomed.start(names=[victim])
        assert not doomed.wait_reported(deployed.client("greengrassv2"), timeout_s=60)
        # its connect went through the presence rule into the bucket
        assert _eventually(lambda: last_event(s3, presence, victim), 15)["eventType"] == "connected"
        arn = sfn.start_execution(
            stateMachineArn=deployed.state_machine_arn,
            name=f"it-{uuid.uuid4().hex[:12]}",
            input=json.dumps(document),
        )["executionArn"]
        _eventually(lambda: "Deploy" in _entered(deployed.history(arn)), 60)
        os.killpg(device.pid, signal.SIGKILL)  # the core and its components, by the core's PID
        device.process.wait(timeout=10)
        killed = time.monotonic()
        execution = _eventually(
            lambda: (e := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and e, 90
        )
        decided = time.monotonic() - killed
        record = last_event(s3, presence, victim)  # the newest of its stored events
    finally:
        doomed.stop()
        deployed.client("iot").remove_thing_from_thing_group(
            thingGroupName=deployed.thing_group, thingName=victim
        )
    assert record is not None and record["eventType"] == "disconnected", record
    assert record["disconnectReason"] == "CONNECTION_LOST"
    assert execution["status"] == "FAILED" and execution["error"] == "DeploymentFailed", execution.get(
        "cause"
    )
    cause = execution["cause"].split(" | ")[0]
    assert f"{victim}: offline: disconnected " in cause and "(CONNECTION_LOST)" in cause, cause
    assert steady not in cause, cause
    # named well within the stage's 60 s budget (15 s grace, 1 s polls, a busy machine)
    assert decided < 60, decided


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def _eventually(probe: Any, timeout_s: float) -> Any:
    """The first truthy value of ``probe()``, polled every 0.2 s; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.2)
    return value
