"""A restart of the endpoint keeps Greengrass state (always) and moto's state (pickled)."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
import zipfile

import pytest

from local_cloud import LocalCloud
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"


def test_restart_keeps_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state_dir = tmp_path / "state"
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return {'echo': event}\n")
    name = f"com.test.P{uuid.uuid4().hex[:6]}"
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": "1.0.0",
        "Manifests": [],
    }
    with LocalCloud(state_dir) as cloud:
        first_port = cloud.info["port"]
        cloud.client("s3").create_bucket(Bucket="kept")
        cloud.client("s3").put_object(Bucket="kept", Key="k", Body=b"v")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = cloud.client("iam").create_role(RoleName="keep", AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
        cloud.client("lambda").create_function(
            FunctionName="kept",
            Runtime="python3.11",
            Role=role,
            Handler="h.handler",
            Code={"ZipFile": code.getvalue()},
        )
        device = cloud.provision_device("kept-thing", thing_group="kept-group")
        gg = cloud.client("greengrassv2")
        arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
        wait_until(
            lambda: gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE", timeout=10
        )
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="kept",
            definition=json.dumps(
                {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"x": 1}, "End": True}}}
            ),
            roleArn=role,
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="kept-1")["executionArn"]
        wait_until(
            lambda: sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED", timeout=10
        )
        deployment = gg.create_deployment(
            targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/kept-group",
            components={name: {"componentVersion": "1.0.0"}},
        )
    with LocalCloud(state_dir) as cloud:
        assert cloud.info["port"] != first_port or True  # a new ephemeral port is fine
        # the restored function gets a warm worker before any invoke (issue 15: no cold start in
        # the next run's execution)
        health = f"{cloud.endpoint_url}/_mlops_edge/health"
        wait_until(
            lambda: json.loads(urllib.request.urlopen(health).read())["services"]["lambda"]["warm"] >= 1,
            timeout=30,
        )
        assert cloud.client("s3").get_object(Bucket="kept", Key="k")["Body"].read() == b"v"
        # Creating the bucket again (us-east-1 answers 200 to its owner) must not replace the
        # restored one and its objects.
        cloud.client("s3").create_bucket(Bucket="kept")
        assert cloud.client("s3").get_object(Bucket="kept", Key="k")["Body"].read() == b"v"
        out = cloud.client("lambda").invoke(FunctionName="kept", Payload=b'{"a": 1}')
        assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}}
        assert cloud.client("iot").describe_thing(thingName="kept-thing")["thingName"] == "kept-thing"
        again = cloud.provision_device("kept-thing", thing_group="kept-group")
        assert again.cert_path == device.cert_path and again.certificate_arn == device.certificate_arn
        sfn = cloud.client("stepfunctions")
        assert json.loads(sfn.describe_execution(executionArn=execution)["output"]) == {"x": 1}
        again_exec = sfn.start_execution(stateMachineArn=machine, name="kept-2")["executionArn"]
        wait_until(
            lambda: sfn.describe_execution(executionArn=again_exec)["status"] == "SUCCEEDED", timeout=10
        )
        gg = cloud.client("greengrassv2")
        assert gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE"
        got = gg.get_deployment(deploymentId=deployment["deploymentId"])
        assert got["deploymentStatus"] == "ACTIVE" and got["components"] == {
            name: {"componentVersion": "1.0.0"}
        }
