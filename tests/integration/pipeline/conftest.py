"""The pipeline stack deployed on the session's local cloud from the CDK app's cloud assembly,
once per session, exactly as `mlops-edge run` deploys it (:func:`deploy_pipeline`): the functions,
roles, environment and state machine are the template's. Its names are the template's too, so no
other test of the session uses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local_cloud import LocalCloud


@dataclass
class Deployed:
    cloud: LocalCloud
    bucket: str
    model_package_group: str
    thing_group: str
    component_prefix: str
    state_machine_arn: str
    #: the execution input's ``dataset`` section: the session's demo CSVs
    dataset: dict[str, str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def run(self, document: dict[str, Any], *, timeout_s: float = 240) -> dict[str, Any]:
        """Starts an execution (always with a name, on the session's dataset) and waits for it to end."""
        sfn = self.client("stepfunctions")
        name = f"it-{uuid.uuid4().hex[:12]}"
        document = {"dataset": dict(self.dataset), **document}
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


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def deployed(
    local_cloud: LocalCloud, cdk_assembly: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    from mlops_edge.environment.deploy import deploy_pipeline
    from pipeline.config.function_env import Settings
    from pipeline.ml.datasets import write_demo

    with _environment(local_cloud.env()):
        pipeline = deploy_pipeline(
            cache_dir=tmp_path_factory.mktemp("assemblies"),
            verifier=local_cloud.pipeline_identity,
            cdk_out=cdk_assembly.directory,
        )
    bucket = pipeline.bucket
    s3, lam = local_cloud.client("s3"), local_cloud.client("lambda")
    data = write_demo("diabetes", tmp_path_factory.mktemp("data"))
    s3.upload_file(str(data.train_csv), bucket, "datasets/train/train.csv")
    s3.upload_file(str(data.validation_csv), bucket, "datasets/validation/validation.csv")
    env = lam.get_function_configuration(FunctionName=pipeline.function_names()[0])["Environment"][
        "Variables"
    ]
    yield Deployed(
        cloud=local_cloud,
        bucket=bucket,
        model_package_group=pipeline.stack.outputs["ModelPackageGroupName"],
        thing_group=pipeline.thing_group,
        component_prefix=env[Settings.variable("component_prefix")],
        state_machine_arn=pipeline.state_machine_arn,
        dataset={
            "train": f"s3://{bucket}/datasets/train/",
            "validation": f"s3://{bucket}/datasets/validation/",
        },
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
