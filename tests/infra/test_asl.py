"""The ASL the local cloud runs (``plain_asl``) is the ASL CloudFormation deploys."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.infra

ACCOUNT, REGION = "123456789012", "us-east-1"
SAGEMAKER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-edge-sagemaker"


def _evaluate(value: Any, refs: dict[str, str]) -> Any:
    """Evaluate the intrinsics of a DefinitionString with concrete values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_evaluate(v, refs) for v in value]
    if set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if set(value) == {"Fn::GetAtt"}:
        return refs[".".join(value["Fn::GetAtt"])]
    if set(value) == {"Fn::Join"}:
        sep, items = value["Fn::Join"]
        return sep.join(_evaluate(i, refs) for i in items)
    raise AssertionError(f"unexpected intrinsic in DefinitionString: {value}")


def test_plain_asl_equals_synthesized_definition(synth) -> None:
    from pipeline.statemachine import plain_asl

    template = synth.templates["pipeline"]
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    prefix = "mlops-edge-pipeline-"
    arns = {
        r["Properties"]["FunctionName"].removeprefix(prefix).replace("-", "_"): (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{r['Properties']['FunctionName']}"
        )
        for r in functions.values()
    }
    refs = {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::URLSuffix": "amazonaws.com",
    }
    for logical_id, r in functions.items():
        refs[f"{logical_id}.Arn"] = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{r['Properties']['FunctionName']}"
        )
    (role_id,) = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and k.startswith("TrainingExecutionRole")
    ]
    refs[f"{role_id}.Arn"] = SAGEMAKER_ROLE_ARN

    (machine,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    deployed = json.loads(_evaluate(machine["Properties"]["DefinitionString"], refs))
    local = plain_asl(arns, sagemaker_role_arn=SAGEMAKER_ROLE_ARN)

    assert deployed["StartAt"] == local["StartAt"]
    assert deployed["States"] == local["States"]
    # Only document-level settings of the resource may differ (e.g. TimeoutSeconds, Comment).
    assert set(deployed) - {"TimeoutSeconds", "Comment"} == set(local) - {"TimeoutSeconds", "Comment"}
