"""End to end through the local cloud's greengrassv2 control plane and a core *process*.

CreateComponentVersion (inline recipes from components/build.py, artifacts in S3) ->
CreateDeployment to a thing group -> the job reaches ``mlops-edge device run`` over MQTT ->
ListEffectiveDeployments shows the device's own SUCCEEDED -> the device answers over MQTT.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from components import build
from tests.fixtures.devices import DeviceFleet
from tests.integration.device.harness import Operator
from tests.unit.ml.helpers import build as build_model

pytestmark = pytest.mark.integration


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _publish(gg: Any, s3: Any, bucket: str, recipe: dict[str, Any], artifact: bytes) -> None:
    uri = recipe["Manifests"][0]["Artifacts"][0]["URI"]
    s3.put_object(Bucket=bucket, Key=uri.split(f"s3://{bucket}/", 1)[1], Body=artifact)
    gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
    name, version = recipe["ComponentName"], recipe["ComponentVersion"]

    def deployable() -> bool:
        versions = gg.list_component_versions(
            arn=f"arn:aws:greengrass:us-east-1:123456789012:components:{name}"
        )
        del versions
        arn = f"arn:aws:greengrass:us-east-1:123456789012:components:{name}:versions:{version}"
        return gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE"

    _wait(deployable, 30, f"{name} {version} DEPLOYABLE")


def test_deployment_through_the_control_plane_to_a_core_process(
    local_cloud: Any, simulated_devices: DeviceFleet, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    group = f"cp-fleet-{suffix}"
    model_name, inference_name = f"com.example.cp{suffix}.Model", f"com.example.cp{suffix}.Inference"
    built = build_model(tmp_path, "diabetes", num_round=10)
    manifest = json.loads((built.out_dir / "model.json").read_text())
    manifest["model_version"] = "1.0.1"
    (built.out_dir / "model.json").write_text(json.dumps(manifest))
    golden = json.loads((built.out_dir / "golden.json").read_text())

    s3, gg, iot = local_cloud.client("s3"), local_cloud.client("greengrassv2"), local_cloud.client("iot")
    bucket = f"cp-{suffix}"
    s3.create_bucket(Bucket=bucket)
    model_version = build.model_version(1)
    _publish(
        gg,
        s3,
        bucket,
        build.render_recipe(
            "model",
            component_name=model_name,
            component_version=model_version,
            artifact_uri=f"s3://{bucket}/{model_name}/{model_version}/model.zip",
        ),
        build.model_artifact(built.out_dir),
    )
    code = build.inference_artifact()
    inference_version = build.inference_version(code)
    _publish(
        gg,
        s3,
        bucket,
        build.render_recipe(
            "inference",
            component_name=inference_name,
            component_version=inference_version,
            artifact_uri=f"s3://{bucket}/{inference_name}/{inference_version}/inference.zip",
            model_component_name=model_name,
        ),
        code,
    )

    (device,) = simulated_devices.start(1, thing_group=group, heartbeat_s=2.0)
    group_arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    merge = json.dumps({"PythonPath": sys.executable, "TelemetryIntervalSeconds": 2})
    deployment = gg.create_deployment(
        targetArn=group_arn,
        deploymentName=f"cp-{suffix}",
        components={
            model_name: {"componentVersion": model_version},
            inference_name: {"componentVersion": inference_version, "configurationUpdate": {"merge": merge}},
        },
        deploymentPolicies={"failureHandlingPolicy": "ROLLBACK"},
    )

    def device_result() -> dict[str, Any] | None:
        for d in gg.list_effective_deployments(coreDeviceThingName=device.thing_name)["effectiveDeployments"]:
            if d["deploymentId"] == deployment["deploymentId"] and d["coreDeviceExecutionStatus"] in (
                "SUCCEEDED",
                "FAILED",
                "REJECTED",
                "TIMED_OUT",
            ):
                return d
        return None

    result = _wait(device_result, 90, "the device's deployment result")
    assert result["coreDeviceExecutionStatus"] == "SUCCEEDED", (result, device.log_path.read_text()[-3000:])

    operator = Operator(local_cloud)
    try:
        answer = operator.infer(
            device.thing_name, {"id": "cp-1", "instances": [golden["rows"][0]]}, resend_s=2.0, timeout=30
        )
        assert answer["ok"] is True and answer["model"]["version"] == "1.0.1"
        assert abs(answer["predictions"][0]["value"] - golden["expected"][0]["value"]) <= 1e-3 * max(
            1.0, abs(golden["expected"][0]["value"])
        )
    finally:
        operator.close()

    def installed() -> list[dict[str, Any]] | None:
        items = gg.list_installed_components(coreDeviceThingName=device.thing_name).get(
            "installedComponents", []
        )
        names = {c["componentName"]: c for c in items}
        return (
            items
            if inference_name in names and names[inference_name].get("lifecycleState") == "RUNNING"
            else None
        )

    _wait(installed, 20, "installed components in the fleet status")
    assert gg.get_core_device(coreDeviceThingName=device.thing_name)["status"] == "HEALTHY"
    assert simulated_devices.stop(device) == 0
