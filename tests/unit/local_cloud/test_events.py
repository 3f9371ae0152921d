"""EventBridge shapes for the local cloud: service events, rule patterns, targets' input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from local_cloud.services.events.models import matches, model_package_state_change, target_input

PACKAGE = {
    "ModelPackageGroupName": "models",
    "ModelPackageVersion": 3,
    "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/models/3",
    "CreationTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "ModelApprovalStatus": "Approved",
    "ModelPackageStatus": "Completed",
    "ResponseMetadata": {"HTTPStatusCode": 200},
}
#: The approval rule's pattern as the pipeline stack synthesizes it (infra/approval.py ApprovalTrigger).
PATTERN = json.dumps(
    {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["models"],
            "ModelApprovalStatus": ["Approved"],
            "$or": [
                {"ApprovalDescription": [{"exists": False}]},
                {"ApprovalDescription": [{"anything-but": {"prefix": "verified on every device"}}]},
            ],
        },
    }
)


def _event(**detail: object) -> dict:
    return model_package_state_change({**PACKAGE, **detail}, account="123456789012", region="us-east-1")


def test_the_event_has_the_documented_envelope_and_the_package_as_detail() -> None:
    event = _event()
    assert event["source"] == "aws.sagemaker"
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert event["resources"] == [PACKAGE["ModelPackageArn"]]
    assert event["detail"]["ModelPackageVersion"] == 3
    assert event["detail"]["CreationTime"] == "2026-01-02T03:04:05Z"
    assert "ResponseMetadata" not in event["detail"]


def test_the_approval_rule_matches_a_person_approving_but_not_the_pipeline() -> None:
    assert matches(PATTERN, _event())
    assert matches(PATTERN, _event(ApprovalDescription="Approved in mlops-edge console"))
    assert not matches(PATTERN, _event(ApprovalDescription="verified on every device of run-1"))
    assert not matches(PATTERN, _event(ModelApprovalStatus="Rejected"))
    assert not matches(PATTERN, _event(ModelPackageGroupName="other"))
    assert not matches(None, _event())  # a scheduled rule takes no events


def test_target_input_constant_path_transformer_or_whole_event() -> None:
    event = _event()
    transformer = {
        "InputPathsMap": {"arn": "$.detail.ModelPackageArn"},
        "InputTemplate": '{"comment":"deploy-only","model_package_arn":<arn>}',
    }
    assert json.loads(target_input({"InputTransformer": transformer}, event)) == {
        "comment": "deploy-only",
        "model_package_arn": PACKAGE["ModelPackageArn"],
    }
    assert json.loads(target_input({"Input": '{"a": 1}'}, event)) == {"a": 1}
    assert json.loads(target_input({"InputPath": "$.detail.ModelPackageVersion"}, event)) == 3
    whole = json.loads(target_input({}, event))
    assert whole["id"] == event["id"] and "ingestion-time" not in whole


def test_placeholders_inside_strings_get_the_text_outside_the_json() -> None:
    event = _event()
    paths = {
        "v": "$.detail.ModelPackageVersion",
        "arn": "$.detail.ModelPackageArn",
        "none": "$.detail.missing",
    }
    template = '{"text": "version <v> of <arn>", "arn": <arn>, "v": <v>, "none": <none>, "keep": "<other>"}'
    from local_cloud.services.events.models import transform

    assert json.loads(transform(template, paths, event)) == {
        "text": f"version 3 of {PACKAGE['ModelPackageArn']}",
        "arn": PACKAGE["ModelPackageArn"],
        "v": 3,
        "none": None,
        "keep": "<other>",
    }
