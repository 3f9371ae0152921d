"""Matching tables and the policies IAM would refuse (``MalformedPolicyDocument``)."""

from __future__ import annotations

import pytest

from local_cloud.iam.exceptions import PolicyError
from local_cloud.iam.matching import action_matches, arn_matches
from local_cloud.iam.policy import PolicyKind, parse_policy

ACTIONS = [
    ("*", "s3:GetObject", True),
    ("s3:*", "s3:GetObject", True),
    ("s3:*", "s3control:GetObject", False),
    ("s3:Get*", "S3:getobject", True),
    ("s3:Get*", "s3:PutObject", False),
    ("iot:Describe?hing", "iot:DescribeThing", True),
    ("iot:Describe?hing", "iot:DescribeThingGroup", False),
    ("s3:Get.bject", "s3:GetObject", False),  # regex characters are literal
    ("s3:Get[O]bject", "s3:GetObject", False),
]

ARNS = [
    ("*", "arn:aws:s3:::b/k", True),
    ("*", "*", True),
    ("arn:aws:s3:::b/*", "*", False),  # a resource-less action is covered only by "*"
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c", True),
    ("arn:aws:s3:::b/*", "arn:aws:s3:::bb/k", False),
    ("arn:aws:s3:::b*", "arn:aws:s3:::bb/k", True),
    ("arn:aws:s3:::my.bucket/*", "arn:aws:s3:::myxbucket/k", False),
    ("arn:aws:iot:*:123456789012:thing/*", "arn:aws:iot:eu-west-1:123456789012:thing/t", True),
    ("arn:aws:iot:*:123456789012:thing/*", "arn:aws:iot:eu-west-1:999999999999:thing/t", False),
    # a wildcard in a leading segment does not cross a ':'; five parts are no ARN at all
    ("arn:aws:iot:*:thing/*", "arn:aws:iot:eu-west-1:123456789012:thing/t", False),
    ("arn:aws:iot:*:*:thing/*", "arn:aws:iot:eu-west-1:123456789012:thing/t", True),
    ("arn:aws:iot:*:123456789012:thing/t", "arn:aws:iot:eu-west-1:extra:123456789012:thing/t", False),
    ("arn:aws:iot:eu-*:*:thing/*", "arn:aws:iot:eu-west-1:123456789012:thing/t", True),
    ("arn:aws:iot:us-*:*:thing/*", "arn:aws:iot:eu-west-1:123456789012:thing/t", False),
    (
        "arn:aws:greengrass:eu-west-1:123456789012:components:com.example.*",
        "arn:aws:greengrass:eu-west-1:123456789012:components:com.example.Model:versions:1.0.0",
        True,
    ),
    (
        "arn:aws:lambda:eu-west-1:123456789012:function:fn",
        "arn:aws:lambda:eu-west-1:123456789012:function:fn:$LATEST",
        False,
    ),
    (
        "arn:aws:lambda:eu-west-1:123456789012:function:fn:*",
        "arn:aws:lambda:eu-west-1:123456789012:function:fn:$LATEST",
        True,
    ),
    (
        "arn:aws:iot:eu-west-1:123456789012:thinggroup/Fleet",
        "arn:aws:iot:eu-west-1:123456789012:thinggroup/fleet",
        False,
    ),
    ("arn:aws:s3:::b/lit${*}", "arn:aws:s3:::b/lit*", True),
    ("arn:aws:s3:::b/lit${*}", "arn:aws:s3:::b/litx", False),
    ("arn:aws:s3:::b/?", "arn:aws:s3:::b/k", True),
]


@pytest.mark.parametrize(("pattern", "action", "matches"), ACTIONS)
def test_action(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(("pattern", "arn", "matches"), ARNS)
def test_arn(pattern: str, arn: str, matches: bool) -> None:
    assert arn_matches(pattern, arn) is matches


def _doc(*statements: object, version: str = "2012-10-17") -> dict[str, object]:
    return {"Version": version, "Statement": list(statements)}


OK = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}

MALFORMED = [
    ({"Statement": []}, "non-empty list"),
    ({"Version": "2012-10-17"}, "non-empty list"),
    ({"Version": "2020-01-01", "Statement": [OK]}, "Version"),
    ({"Version": "2012-10-17", "Statement": [OK], "Extra": 1}, "unknown top-level"),
    (_doc({**OK, "Effect": "allow"}), "Effect"),
    (_doc({"Effect": "Allow", "Resource": "*"}), "needs Action or NotAction"),
    (_doc({**OK, "NotAction": "s3:PutObject"}), "both Action and NotAction"),
    (_doc({"Effect": "Allow", "Action": "s3:GetObject"}), "needs Resource or NotResource"),
    (_doc({**OK, "NotResource": "*"}), "both Resource and NotResource"),
    (_doc({**OK, "Action": "GetObject"}), "no service prefix"),
    (_doc({**OK, "Action": []}), "non-empty string or list"),
    (_doc({**OK, "Resource": "my-bucket"}), "neither"),
    (_doc({**OK, "Resource": "arn:aws:iot:*:thing/*"}), "six parts"),
    (_doc({**OK, "Resource": "arn:aws:s3:::${aws:username}/*"}), "policy variable"),
    (_doc({**OK, "Actions": "s3:*"}), "unknown fields"),
    (_doc({**OK, "Condition": {"StringEqualz": {"aws:TagKeys": "a"}}}), "unknown condition operator"),
    (_doc({**OK, "Sid": "A"}, {**OK, "Sid": "A"}), "unique"),
    ("{not json", "not JSON"),
    (["a list"], "JSON object"),
]


@pytest.mark.parametrize(("document", "message"), MALFORMED)
def test_malformed_identity_policy(document: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(document, name="P")  # type: ignore[arg-type]


def test_malformed_resource_policies() -> None:
    with pytest.raises(PolicyError, match="exactly one of Principal"):
        parse_policy(_doc(OK), name="B", kind=PolicyKind.RESOURCE)
    with pytest.raises(PolicyError, match="wildcards are allowed only"):
        parse_policy(
            _doc({**OK, "Principal": {"AWS": "arn:aws:iam::1:role/*"}}), name="B", kind=PolicyKind.RESOURCE
        )
    with pytest.raises(PolicyError, match="unknown principal type"):
        parse_policy(_doc({**OK, "Principal": {"Robot": "r"}}), name="B", kind=PolicyKind.RESOURCE)


def test_accepted_shapes() -> None:
    """What IAM accepts: one statement object, strings or lists, JSON text, Principal ignored
    on identity policies, no Resource on a trust policy."""
    single = parse_policy({"Version": "2012-10-17", "Statement": OK}, name="P")
    assert len(single.statements) == 1 and single.statements[0].resources == ("*",)
    statement = '{"Effect": "Deny", "NotAction": ["iam:*"], "NotResource": "*"}'
    text = parse_policy(f'{{"Version": "2012-10-17", "Statement": [{statement}]}}', name="T")
    st = text.statements[0]
    assert (st.effect, st.not_actions, st.not_resources) == ("Deny", True, True)
    ignored = parse_policy(_doc({**OK, "Principal": {"AWS": "*"}}), name="I")
    assert ignored.statements[0].principal is None
    trust = parse_policy(
        _doc(
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ),
        name="Trust",
        kind=PolicyKind.RESOURCE,
    )
    assert trust.statements[0].resources == ("*",)
