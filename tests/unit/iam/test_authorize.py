"""``authorize``, the dispatcher's one call, over the policies the CDK app synthesizes.

The policies come from ``cases/cdk_pipeline.json`` (the pipeline stack's, intrinsics resolved).
Each test removes or changes what a real run depends on and checks the refusal a Lambda handler
would get back, through botocore's parser, as on AWS.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

from local_cloud.iam import (
    Policy,
    PolicyKind,
    UnknownContextKey,
    UnsupportedConditionKey,
    authorize,
    parse_policy,
)

A, R = "123456789012", "eu-west-1"
LIBRARY: dict[str, Any] = json.loads((Path(__file__).parent / "cases" / "cdk_pipeline.json").read_text())[
    "policies"
]
BUCKET = "mlops-edge-artifacts-123456789012"
TLS = {"aws:SecureTransport": True}


def policy(name: str, drop_sid: str = "") -> Policy:
    entry = copy.deepcopy(LIBRARY[name])
    entry["document"]["Statement"] = [s for s in entry["document"]["Statement"] if s.get("Sid") != drop_sid]
    return parse_policy(entry["document"], name=name, kind=PolicyKind(f"{entry['kind']}-based"))


def session(role: str) -> str:
    return f"arn:aws:sts::{A}:assumed-role/{role}/mlops-edge"


def check_deployment(policies: list[Policy]) -> Any:
    return authorize(
        principal=session("CheckDeploymentRole"),
        service="greengrassv2",
        operation="ListEffectiveDeployments",
        params={"coreDeviceThingName": "edge-001"},
        policies=policies,
        account=A,
        region=R,
        facts={"jobIds": ["4b7e-job"], "thingGroupNames": ["mlops-edge-fleet"]},
        context=TLS,
    )


def test_check_deployment_is_allowed_with_its_dependent_actions() -> None:
    verdict = check_deployment([policy("CheckDeployment")])
    assert verdict.allowed and verdict.message() == ""
    used = [(c.action, [str(s) for s in d.statements]) for c, d in verdict.results]
    assert used[0] == ("greengrass:ListEffectiveDeployments", ["CheckDeployment#CoreDeviceDeployments"])
    assert [a for a, _ in used[1:]] == [
        "iot:DescribeJob",
        "iot:DescribeJobExecution",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
    ]


def test_without_a_dependent_action_the_handler_gets_aws_access_denied() -> None:
    """Issue 10's first defect: granted ListEffectiveDeployments alone, a real run is refused."""
    verdict = check_deployment([policy("CheckDeployment", drop_sid="EffectiveDeploymentJobs")])
    assert not verdict.allowed
    check, decision = verdict.denial or (None, None)
    assert (check.action, decision.kind) == ("iot:DescribeJob", "ImplicitlyDenied")
    expected = (
        f"User: {session('CheckDeploymentRole')} is not authorized to perform: iot:DescribeJob on resource: "
        f"arn:aws:iot:{R}:{A}:job/4b7e-job because no identity-based policy allows the iot:DescribeJob action"
    )
    assert verdict.message() == expected
    response = verdict.response(request_id="r-1", method="GET")
    parsed = create_parser("rest-json").parse(
        {"status_code": response.status, "headers": HeadersDict(response.headers), "body": response.body},
        None,
    )
    assert parsed["Error"] == {"Code": "AccessDeniedException", "Message": expected}
    assert len(verdict.results) == 2  # checking stops at the first refusal


def test_state_machine_training_passes_only_the_training_role() -> None:
    def start(role_arn: str) -> Any:
        return authorize(
            principal=session("StateMachineRole"),
            service="sagemaker",
            operation="CreateTrainingJob",
            params={"TrainingJobName": "mlops-edge-20260101", "RoleArn": role_arn},
            policies=[policy("StateMachine")],
            account=A,
            region=R,
            context=TLS,
        )

    assert start(f"arn:aws:iam::{A}:role/TrainingExecutionRole0CBEB7FB").allowed
    refused = start(f"arn:aws:iam::{A}:role/AdminRole")
    assert refused.message().endswith("because no identity-based policy allows the iam:PassRole action")


def test_bucket_policy_refuses_plain_http_with_an_explicit_deny() -> None:
    def get(secure: bool) -> Any:
        return authorize(
            principal=session("PublishComponentsRole"),
            service="s3",
            operation="GetObject",
            params={"Bucket": BUCKET, "Key": "artifacts/models/3/model.zip"},
            policies=[policy("PublishComponents"), policy("ArtifactsBucketPolicy")],
            account=A,
            region=R,
            context={"aws:SecureTransport": secure},
        )

    assert get(True).allowed
    refused = get(False)
    assert refused.message().endswith(
        '"arn:aws:s3:::mlops-edge-artifacts-123456789012/artifacts/models/3/model.zip" '
        "with an explicit deny in a resource-based policy"
    )
    assert b"<Code>AccessDenied</Code>" in refused.response(request_id="r").body


def test_listing_outside_the_granted_prefixes_is_refused() -> None:
    def listing(prefix: str) -> bool:
        return authorize(
            principal=session("PublishComponentsRole"),
            service="s3",
            operation="ListObjectsV2",
            params={"Bucket": BUCKET, "Prefix": prefix},
            policies=[policy("PublishComponents")],
            account=A,
            region=R,
            context=TLS,
        ).allowed

    assert listing("artifacts/components/com.example.Model/")
    assert not listing("state/")


def test_loud_failures_reach_the_dispatcher() -> None:
    guarded = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"s3:ExistingObjectTag/stage": "prod"}},
                }
            ],
        },
        name="Guarded",
    )
    with pytest.raises(UnsupportedConditionKey):
        authorize(
            principal=session("R"),
            service="s3",
            operation="GetObject",
            params={"Bucket": "b", "Key": "k"},
            policies=[guarded],
            account=A,
            region=R,
            context=TLS,
        )
    with pytest.raises(UnknownContextKey):
        authorize(
            principal=session("R"),
            service="s3",
            operation="GetObject",
            params={"Bucket": "b", "Key": "k"},
            policies=[guarded],
            account=A,
            region=R,
            context={"aws:SecureTransprt": True},
        )
