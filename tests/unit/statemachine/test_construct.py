"""PipelineStateMachine in a bare stack: logging, tracing, IAM, and the same ASL as plain_asl."""

from __future__ import annotations

import json
from typing import Any

from pipeline.statemachine.asl import _evaluate

from .conftest import ACCOUNT, REGION, ROLE


def _state_machine(template: Any) -> dict[str, Any]:
    (resource,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    return resource["Properties"]


def test_logging_and_tracing_are_on(template: Any) -> None:
    props = _state_machine(template)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_synthesized_definition_equals_plain_asl(template: Any, asl: dict[str, Any]) -> None:
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    synthesized = json.loads(_evaluate(_state_machine(template)["DefinitionString"], pseudo))
    synthesized.pop("TimeoutSeconds", None)
    expected = {k: v for k, v in asl.items() if k != "Comment"}
    assert synthesized == expected


def test_role_may_start_training_and_pass_only_the_sagemaker_role(template: Any) -> None:
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    text = json.dumps(statements)
    assert "sagemaker:CreateTrainingJob" in text and "sagemaker:DescribeTrainingJob" in text
    pass_role = next(s for s in statements if s["Action"] == "iam:PassRole")
    assert pass_role["Resource"] == ROLE
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    ours = [s for s in statements if s.get("Sid") in ("StartTrainingJobs", "PassSageMakerRole")]
    assert len(ours) == 2 and all(s["Resource"] != "*" for s in ours)
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert invoke and all(s["Resource"] != "*" for s in invoke)
