"""The pipeline deployed on the session's local cloud through the ordinary APIs, once per module.

Functions are registered with CreateFunction (handlers ``lambdas.<name>.handler`` from the
installed project), the state machine from ``plain_asl`` — the same ASL the CDK app synthesizes.
Names carry a random suffix because the session's cloud is shared with other tests.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local_cloud import LocalCloud


@dataclass
class Deployed:
    cloud: LocalCloud
    suffix: str
    bucket: str
    model_package_group: str
    thing_group: str
    component_prefix: str
    state_machine_arn: str
    sagemaker_role_arn: str
    function_arns: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def run(self, document: dict[str, Any], *, timeout_s: float = 240) -> dict[str, Any]:
        """Starts an execution (always with a name) and waits for it to end."""
        sfn = self.client("stepfunctions")
        name = f"it-{uuid.uuid4().hex[:12]}"
        arn = sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(document)
        )["executionArn"]
        deadline = time.monotonic() + timeout_s
        while True:
            execution = sfn.describe_execution(executionArn=arn)
            if execution["status"] != "RUNNING":
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {arn} still RUNNING after {timeout_s} s")
            time.sleep(0.5)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
        return [event for page in pages for event in page["events"]]


def exited_states(events: list[dict[str, Any]]) -> list[str]:
    return [e["stateExitedEventDetails"]["name"] for e in events if "stateExitedEventDetails" in e]


def _placeholder_zip() -> bytes:
    """Code for CreateFunction: the handlers come from the installed project, as in a layer."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "handlers are imported from the installed mlops-edge project\n")
    return buf.getvalue()


@pytest.fixture(scope="session")
def deployed(
    local_cloud: LocalCloud, lambda_role_arn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    from pipeline.ml.datasets import write_demo
    from pipeline.statemachine import FUNCTION_NAMES
    from pipeline.statemachine.node import use_bundled_node

    suffix = uuid.uuid4().hex[:8]
    bucket, group, things = f"mlops-it-{suffix}", f"mlops-it-models-{suffix}", f"mlops-it-fleet-{suffix}"
    prefix = f"com.example.it{suffix}"
    s3, sm, iot, lam, iam, sfn = (
        local_cloud.client(s) for s in ("s3", "sagemaker", "iot", "lambda", "iam", "stepfunctions")
    )
    s3.create_bucket(Bucket=bucket)
    sm.create_model_package_group(ModelPackageGroupName=group)
    iot.create_thing_group(thingGroupName=things)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    sm_role = iam.create_role(RoleName=f"mlops-it-sm-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    states_role = iam.create_role(
        RoleName=f"mlops-it-sfn-{suffix}", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]

    data = write_demo("diabetes", tmp_path_factory.mktemp("data"))
    s3.upload_file(str(data.train_csv), bucket, "datasets/train/train.csv")
    s3.upload_file(str(data.validation_csv), bucket, "datasets/validation/validation.csv")

    env = {
        "MLOPS_EDGE_BUCKET": bucket,
        "MLOPS_EDGE_MODEL_PACKAGE_GROUP": group,
        "MLOPS_EDGE_THING_GROUP": things,
        "MLOPS_EDGE_COMPONENT_PREFIX": prefix,
        "MLOPS_EDGE_VALIDATION_URI": f"s3://{bucket}/datasets/validation/",
        # VerifyOnDevice's MQTT identity: configuration, as the IoT endpoint + secret are on AWS.
        **{k: v for k, v in local_cloud.env().items() if k.startswith("MLOPS_EDGE_MQTT_")},
    }
    code = _placeholder_zip()
    arns = {
        name: lam.create_function(
            FunctionName=f"mlops-it-{suffix}-{name.replace('_', '-')}",
            Runtime="python3.11",
            Role=lambda_role_arn,
            Handler=f"lambdas.{name}.handler",
            Code={"ZipFile": code},
            Timeout=300,
            MemorySize=1024,
            Environment={"Variables": env},
        )["FunctionArn"]
        for name in FUNCTION_NAMES
    }
    use_bundled_node()
    from pipeline.statemachine import plain_asl

    definition = plain_asl(arns, sagemaker_role_arn=sm_role)
    arn = sfn.create_state_machine(
        name=f"mlops-it-{suffix}", definition=json.dumps(definition), roleArn=states_role
    )["stateMachineArn"]
    yield Deployed(
        cloud=local_cloud,
        suffix=suffix,
        bucket=bucket,
        model_package_group=group,
        thing_group=things,
        component_prefix=prefix,
        state_machine_arn=arn,
        sagemaker_role_arn=sm_role,
        function_arns=arns,
    )


FAST = {
    "hyperparameters": {"num_round": 10, "max_depth": 3},
    "poll": {
        "training": {"interval_s": 1, "max_polls": 120},
        "components": {"interval_s": 1, "max_polls": 30},
        "deployment": {"interval_s": 1, "max_polls": 120},
    },
    "verification": {"requests": 5, "timeout_s": 15},
}


@pytest.fixture
def fast_input() -> dict[str, Any]:
    return json.loads(json.dumps(FAST))


@pytest.fixture(scope="session")
def trained(deployed: Deployed) -> dict[str, Any]:
    """One full prepare + package run; the (still) empty thing group stops it at Deploy (NoDevices)."""
    document = json.loads(json.dumps(FAST))
    document["quality"] = {"max": {"validation:rmse": 1000}, "min": {"validation:r2": -10}}
    execution = deployed.run(document)
    return {"execution": execution, "events": deployed.history(execution["executionArn"])}


def model_package(deployed: Deployed) -> str:
    """ARN of the model package the ``trained`` run registered."""
    sm = deployed.client("sagemaker")
    (package,) = sm.list_model_packages(ModelPackageGroupName=deployed.model_package_group)[
        "ModelPackageSummaryList"
    ]
    return str(package["ModelPackageArn"])


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]
