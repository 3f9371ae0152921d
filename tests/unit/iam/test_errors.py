"""AWS's refusal text, and its wire form read back by botocore's own parsers."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser

from local_cloud.iam import (
    ExplicitlyDenied,
    ImplicitlyDenied,
    PolicyKind,
    StatementRef,
    UnsupportedProtocol,
    access_denied_message,
    error_code,
    render_access_denied,
)

WHO = "arn:aws:sts::123456789012:assumed-role/CheckDeploymentRole/mlops-edge-check"
THING_GROUP = "arn:aws:iot:eu-west-1:123456789012:thinggroup/fleet"


def test_implicit_deny_message() -> None:
    message = access_denied_message(WHO, "iot:DescribeThingGroup", ImplicitlyDenied(THING_GROUP))
    assert message == (
        f"User: {WHO} is not authorized to perform: iot:DescribeThingGroup on resource: {THING_GROUP} "
        "because no identity-based policy allows the iot:DescribeThingGroup action"
    )


def test_explicit_deny_messages() -> None:
    inline = ExplicitlyDenied(THING_GROUP, (StatementRef("Inline", PolicyKind.IDENTITY, 0),))
    assert access_denied_message(WHO, "iot:DescribeThingGroup", inline).endswith(
        "with an explicit deny in an identity-based policy"
    )
    managed = ExplicitlyDenied(
        THING_GROUP,
        (StatementRef("Guard", PolicyKind.IDENTITY, 0, policy_arn="arn:aws:iam::123456789012:policy/Guard"),),
    )
    assert access_denied_message(WHO, "iot:DescribeThingGroup", managed).endswith(
        "with an explicit deny in an identity-based policy: arn:aws:iam::123456789012:policy/Guard"
    )
    bucket = ExplicitlyDenied("arn:aws:s3:::b/k", (StatementRef("BucketPolicy", PolicyKind.RESOURCE, 0),))
    assert access_denied_message(WHO, "s3:GetObject", bucket, service="s3") == (
        f'User: {WHO} is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::b/k" '
        "with an explicit deny in a resource-based policy"
    )


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "AccessDenied", 403),
        ("iam", "AccessDenied", 403),
        ("sts", "AccessDenied", 403),
        ("stepfunctions", "AccessDeniedException", 400),
        ("sagemaker", "AccessDeniedException", 400),
        ("secretsmanager", "AccessDeniedException", 400),
        ("logs", "AccessDeniedException", 400),
        ("lambda", "AccessDeniedException", 403),
        ("greengrassv2", "AccessDeniedException", 403),
        ("iot", "AccessDeniedException", 403),
    ],
)
def test_botocore_reads_code_and_message(service: str, code: str, status: int) -> None:
    """The client sees exactly what it would see from AWS: ``ClientError`` code and message."""
    message = f"User: {WHO} is not authorized to perform: x:Y on resource: arn:aws:x:::<&>"
    response = render_access_denied(service, message, request_id="req-1")
    assert response.status == status
    protocol = botocore.session.get_session().get_service_model(service).metadata["protocol"]
    parsed = create_parser(protocol).parse(
        {"status_code": response.status, "headers": HeadersDict(response.headers), "body": response.body},
        None,
    )
    assert parsed["Error"]["Code"] == code == error_code(service)
    assert parsed["Error"]["Message"] == message
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_head_gets_no_body() -> None:
    response = render_access_denied("s3", "denied", request_id="r", method="HEAD")
    assert (response.status, response.body) == (403, b"")


def test_an_unrendered_protocol_is_refused() -> None:
    with pytest.raises(UnsupportedProtocol):
        render_access_denied("ec2", "denied", request_id="r")
    with pytest.raises(UnsupportedProtocol):
        error_code("ec2")
