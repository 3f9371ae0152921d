"""A person approving a registered model package starts the deploy-only execution, through the
pipeline stack's own EventBridge rule (infra/approval.py), deployed as `mlops-edge run` deploys it.

The stack is deployed on a local cloud of this module's own (the session's cloud holds the
integration tests' deployment under the same fixed names, and an approval there would start an
execution in the middle of theirs). A real execution with ``auto_approve: false`` trains and
registers a package and stops at ``AwaitingApproval``; ``UpdateModelPackage`` to ``Approved``, as
the console, CLI or Studio do it, must start an execution whose input is the rule's: that package's
ARN. No device is in the thing group, so that execution ends at ``Deploy`` (``NoDevices``), after
resolving the package and publishing its components, without training. The pipeline's own approval
(``ApprovalDescription`` starting with the prefix promote.py writes) must start nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_cloud import LocalCloud

from .conftest import FAST, Deployed, exited_states

pytestmark = pytest.mark.integration

#: How long the events worker may take to start an execution (it is a queue and one thread).
DELIVERY_TIMEOUT_S = 30
#: The input a sentinel rule starts an execution with: it fails at Configure, trains nothing.
SENTINEL = {"comment": "sentinel", "hyperparameters": {"num_round": "many"}}


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory, cdk_assembly: Any) -> Iterator[Deployed]:
    from mlops_edge.environment.deploy import deploy_pipeline
    from pipeline.ml.datasets import write_demo

    state_dir = tmp_path_factory.mktemp("approval")
    saved = dict(os.environ)
    try:
        with LocalCloud(state_dir / "cloud") as cloud:
            os.environ.update(cloud.env())  # pipeline.aws.client() reads the endpoint from it
            pipeline = deploy_pipeline(
                cache_dir=state_dir / "cache",
                verifier=cloud.pipeline_identity,
                cdk_out=cdk_assembly.directory,
            )
            bucket, s3 = pipeline.bucket, cloud.client("s3")
            data = write_demo("diabetes", state_dir / "data")
            s3.upload_file(str(data.train_csv), bucket, "datasets/train/train.csv")
            s3.upload_file(str(data.validation_csv), bucket, "datasets/validation/validation.csv")
            yield Deployed(
                cloud=cloud,
                bucket=bucket,
                model_package_group=pipeline.stack.outputs["ModelPackageGroupName"],
                thing_group=pipeline.thing_group,
                component_prefix="",
                state_machine_arn=pipeline.state_machine_arn,
                dataset={
                    "train": f"s3://{bucket}/datasets/train/",
                    "validation": f"s3://{bucket}/datasets/validation/",
                },
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _executions(deployed: Deployed) -> dict[str, dict[str, Any]]:
    sfn = deployed.client("stepfunctions")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=deployed.state_machine_arn)
    return {e["executionArn"]: e for page in pages for e in page["executions"]}


def _new_execution(deployed: Deployed, known: set[str]) -> str:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        fresh = sorted(set(_executions(deployed)) - known)
        if fresh:
            assert len(fresh) == 1, f"one approval, one execution: {fresh}"
            return fresh[0]
        time.sleep(0.25)
    raise AssertionError(f"no execution started within {DELIVERY_TIMEOUT_S} s of the approval")


def _wait_end(deployed: Deployed, arn: str, timeout_s: float = 240) -> dict[str, Any]:
    sfn = deployed.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while (execution := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still RUNNING after {timeout_s} s"
        time.sleep(0.5)
    return dict(execution)


@pytest.fixture(scope="module")
def awaiting(own: Deployed) -> str:
    """The ARN of a package a real execution trained, registered and left PendingManualApproval."""
    document = json.loads(json.dumps(FAST))
    document["quality"] = {"max": {"validation:rmse": 1000}, "min": {"validation:r2": -10}}
    execution = own.run({**document, "auto_approve": False})
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert exited_states(own.history(execution["executionArn"]))[-1] == "AwaitingApproval"
    sm = own.client("sagemaker")
    (package,) = sm.list_model_packages(ModelPackageGroupName=own.model_package_group)[
        "ModelPackageSummaryList"
    ]
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    return str(package["ModelPackageArn"])


def test_the_rule_is_deployed_with_the_pipeline_stack(own: Deployed) -> None:
    events = own.client("events")
    (rule,) = [
        r for r in events.list_rules()["Rules"] if "SageMaker Model Package State Change" in r["EventPattern"]
    ]
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"])["detail"]["ModelPackageGroupName"] == [own.model_package_group]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == own.state_machine_arn
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}


def test_approving_a_registered_package_starts_the_deploy_only_execution(
    own: Deployed, awaiting: str
) -> None:
    sm = own.client("sagemaker")
    known = set(_executions(own))
    # As a person approves it: the status alone, no ApprovalDescription, no metadata (the package
    # keeps its ONNX links, as on AWS: see test_a_bare_approval_keeps_the_packages_metadata).
    sm.update_model_package(ModelPackageArn=awaiting, ModelApprovalStatus="Approved")
    arn = _new_execution(own, known)

    sfn = own.client("stepfunctions")
    document = json.loads(sfn.describe_execution(executionArn=arn)["input"])
    assert document == {
        "comment": "deploy-only: model package approved in the registry",
        "model_package_arn": awaiting,
    }
    execution = _wait_end(own, arn)
    history = own.history(arn)
    states = exited_states(history)
    assert "StartTraining" not in states, states
    assert states[:3] == ["Configure", "ModelGiven?", "RegisterModel"], states
    assert "PublishComponents" in states, (states, execution.get("cause"))
    registry = next(
        json.loads(e["stateExitedEventDetails"]["output"])["registry"]
        for e in history
        if e.get("stateExitedEventDetails", {}).get("name") == "RegisterModel"
    )
    assert registry["model_package_arn"] == awaiting and registry["approval_status"] == "Approved"
    # No device in the thing group: it stops at Deploy and says so (nothing was trained or deployed).
    assert execution["status"] == "FAILED" and execution["error"] == "NoDevices", execution.get("cause")


def test_the_pipelines_own_approval_starts_nothing(own: Deployed, awaiting: str) -> None:
    """promote.py's approval after verifying a model on every device must not restart the pipeline.
    Delivery is one queue on one thread, so once an event put after it has started its execution,
    the approval's event has been matched (and, rightly, started nothing)."""
    events, sm = own.client("events"), own.client("sagemaker")
    known = set(_executions(own))
    sm.update_model_package(
        ModelPackageArn=awaiting,
        ModelApprovalStatus="Approved",
        ApprovalDescription="verified on every device of thing group mlops-edge-fleet (deployment d-1)",
    )
    (approval_rule,) = [r for r in events.list_rules()["Rules"] if "aws.sagemaker" in r["EventPattern"]]
    (target,) = events.list_targets_by_rule(Rule=approval_rule["Name"])["Targets"]
    events.put_rule(Name="it-sentinel", EventPattern=json.dumps({"source": ["it.sentinel"]}))
    try:
        events.put_targets(
            Rule="it-sentinel",
            Targets=[
                {
                    "Id": "sentinel",
                    "Arn": own.state_machine_arn,
                    "RoleArn": target["RoleArn"],
                    "Input": json.dumps(SENTINEL),
                }
            ],
        )
        events.put_events(Entries=[{"Source": "it.sentinel", "DetailType": "sentinel", "Detail": "{}"}])
        arn = _new_execution(own, known)
        sfn = own.client("stepfunctions")
        assert json.loads(sfn.describe_execution(executionArn=arn)["input"]) == SENTINEL
        assert _wait_end(own, arn)["error"] == "InvalidInput"
    finally:
        events.remove_targets(Rule="it-sentinel", Ids=["sentinel"])
        events.delete_rule(Name="it-sentinel")


def test_a_bare_approval_keeps_the_packages_metadata(own: Deployed) -> None:
    """UpdateModelPackage through the real endpoint updates only what it carries, as AWS does
    (local_cloud/services/sagemaker/model_packages.py; moto alone replaced the map)."""
    sm = own.client("sagemaker")
    group = "it-approval-bare"  # not the pipeline's group: the rule does not match it
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"onnx_uri": "s3://b/k", "execution": "run-1"},
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described.get("CustomerMetadataProperties") == {"onnx_uri": "s3://b/k", "execution": "run-1"}
    sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"verified_thing_group": "g"},
        CustomerMetadataPropertiesToRemove=["execution"],
    )
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {"onnx_uri": "s3://b/k", "verified_thing_group": "g"}
    with pytest.raises(sm.exceptions.ClientError, match="Member must have length less than or equal to 256"):
        sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"k": "v" * 257})
