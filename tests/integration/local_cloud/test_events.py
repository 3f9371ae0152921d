"""EventBridge on the local cloud: a model package approved in the registry starts the state machine
of a rule whose pattern matches, with the target's transformed input, as on AWS."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from local_cloud import LocalCloud

pytestmark = pytest.mark.integration


def _executions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return sfn.list_executions(stateMachineArn=arn)["executions"]


def _wait_for(sfn: Any, arn: str, count: int, timeout_s: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _executions(sfn, arn)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    return _executions(sfn, arn)


def test_an_approval_starts_the_rules_state_machine_with_the_package_arn(local_cloud: LocalCloud) -> None:
    suffix = uuid.uuid4().hex[:8]
    group = f"models-{suffix}"
    sfn, events, sagemaker = (local_cloud.client(s) for s in ("stepfunctions", "events", "sagemaker"))
    role = local_cloud.client("iam").create_role(
        RoleName=f"events-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    machine = sfn.create_state_machine(
        name=f"deploy-{suffix}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [group],
            "ModelApprovalStatus": ["Approved"],
            "$or": [
                {"ApprovalDescription": [{"exists": False}]},
                {"ApprovalDescription": [{"anything-but": {"prefix": "verified on every device"}}]},
            ],
        },
    }
    events.put_rule(Name=f"approval-{suffix}", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(
        Rule=f"approval-{suffix}",
        Targets=[
            {
                "Id": "Target0",
                "Arn": machine,
                "RoleArn": role,
                "InputTransformer": {
                    "InputPathsMap": {"arn": "$.detail.ModelPackageArn"},
                    "InputTemplate": '{"comment":"deploy-only","model_package_arn":<arn>}',
                },
            }
        ],
    )
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arns = [
        sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval"
        )["ModelPackageArn"]
        for _ in range(2)
    ]
    time.sleep(1)
    assert _executions(sfn, machine) == []  # registered, not approved: nothing starts

    sagemaker.update_model_package(
        ModelPackageArn=arns[0],
        ModelApprovalStatus="Approved",
        ApprovalDescription="verified on every device of g",
    )
    time.sleep(1)
    assert _executions(sfn, machine) == []  # the pipeline's own approval is filtered by the pattern

    sagemaker.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved")
    started = _wait_for(sfn, machine, 1)
    assert len(started) == 1
    document = json.loads(sfn.describe_execution(executionArn=started[0]["executionArn"])["input"])
    assert document == {"comment": "deploy-only", "model_package_arn": arns[1]}

    events.put_events(
        Entries=[{"Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
                  "Detail": json.dumps({"ModelPackageGroupName": group, "ModelApprovalStatus": "Approved",
                                        "ModelPackageArn": "arn:custom"})}]
    )  # fmt: skip
    started = _wait_for(sfn, machine, 2)
    inputs = sorted(
        json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])["model_package_arn"]
        for e in started
    )
    assert inputs == sorted([arns[1], "arn:custom"])
