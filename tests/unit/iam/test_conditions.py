"""Per-operator tables: each row is (operator as written, policy values, request values, holds).

Request values ``None`` mean the key is absent from the request. The key is ``aws:TagKeys`` (a
key the local cloud fills) for every row, so only the operator varies.
"""

from __future__ import annotations

import base64

import pytest

from local_cloud.iam.conditions import OPERATORS, parse_condition
from local_cloud.iam.exceptions import PolicyError, UnsupportedConditionKey

KEY = "aws:TagKeys"

ROWS = [
    # strings
    ("StringEquals", ["a"], ["a"], True),
    ("StringEquals", ["a"], ["A"], False),
    ("StringEquals", ["a", "b"], ["b"], True),
    ("StringEquals", ["a"], None, False),
    ("StringNotEquals", ["a"], ["b"], True),
    ("StringNotEquals", ["a", "b"], ["b"], False),
    ("StringNotEquals", ["a"], None, True),  # negated operator, missing key: true
    ("StringEqualsIgnoreCase", ["Team"], ["tEAM"], True),
    ("StringNotEqualsIgnoreCase", ["Team"], ["tEAM"], False),
    ("StringLike", ["artifacts/*"], ["artifacts/models/1"], True),
    ("StringLike", ["artifacts/*"], ["state/x"], False),
    ("StringLike", ["a?c"], ["abc"], True),
    ("StringLike", ["a?c"], ["abbc"], False),
    ("StringLike", ["a.c"], ["abc"], False),  # the dot is literal
    ("StringLike", ["ARTIFACTS/*"], ["artifacts/x"], False),  # case-sensitive
    ("StringLike", ["lit${*}"], ["lit*"], True),  # the escape for a literal *
    ("StringLike", ["lit${*}"], ["litx"], False),
    ("StringNotLike", ["artifacts/*"], ["state/x"], True),
    ("StringNotLike", ["artifacts/*"], None, True),
    # numbers
    ("NumericEquals", ["10"], ["10.0"], True),
    ("NumericNotEquals", ["10"], ["11"], True),
    ("NumericLessThan", ["10"], ["9"], True),
    ("NumericLessThan", ["10"], ["10"], False),
    ("NumericLessThanEquals", ["10"], ["10"], True),
    ("NumericGreaterThan", ["10"], ["11"], True),
    ("NumericGreaterThanEquals", ["10"], ["9"], False),
    ("NumericEquals", ["10"], ["ten"], False),  # an unreadable request value never matches
    # dates (ISO 8601 or epoch seconds)
    ("DateLessThan", ["2026-01-01T00:00:00Z"], ["2025-12-31T23:59:59Z"], True),
    ("DateGreaterThan", ["2026-01-01T00:00:00Z"], ["1767225600"], False),  # equal instant
    ("DateGreaterThanEquals", ["2026-01-01T00:00:00Z"], ["1767225600"], True),
    ("DateEquals", ["2026-01-01T00:00:00+00:00"], ["2026-01-01T00:00:00Z"], True),
    ("DateNotEquals", ["2026-01-01T00:00:00Z"], ["2026-01-02T00:00:00Z"], True),
    ("DateLessThanEquals", ["2026-01-01T00:00:00Z"], ["2026-01-01T00:00:00Z"], True),
    # booleans
    ("Bool", ["false"], ["false"], True),
    ("Bool", ["false"], ["true"], False),
    ("Bool", ["true"], ["True"], True),
    ("Bool", [True], ["true"], True),  # JSON true in the policy
    ("Bool", ["false"], None, False),
    ("BoolIfExists", ["false"], None, True),
    # binary, IP
    ("BinaryEquals", [base64.b64encode(b"x").decode()], [base64.b64encode(b"x").decode()], True),
    ("BinaryEquals", [base64.b64encode(b"x").decode()], [base64.b64encode(b"y").decode()], False),
    ("IpAddress", ["10.0.0.0/8"], ["10.1.2.3"], True),
    ("IpAddress", ["10.0.0.0/8"], ["192.168.0.1"], False),
    ("NotIpAddress", ["10.0.0.0/8"], ["192.168.0.1"], True),
    # ARNs: segment by segment
    (
        "ArnLike",
        ["arn:aws:states:*:123456789012:stateMachine:*"],
        ["arn:aws:states:eu-west-1:123456789012:stateMachine:P"],
        True,
    ),
    (
        "ArnLike",
        ["arn:aws:states:*:123456789012:stateMachine:*"],
        ["arn:aws:states:eu-west-1:999999999999:stateMachine:P"],
        False,
    ),
    ("ArnLike", ["arn:aws:s3:::b/*"], ["arn:aws:s3:::b/k/k2"], True),
    ("ArnEquals", ["arn:aws:iam::123456789012:policy/p"], ["arn:aws:iam::123456789012:policy/p"], True),
    (
        "ArnEquals",
        ["arn:aws:iam::123456789012:policy/*"],
        ["arn:aws:iam::123456789012:policy/p"],
        True,
    ),  # IAM's own rule
    ("ArnNotEquals", ["arn:aws:iam::123456789012:policy/p"], ["arn:aws:iam::123456789012:policy/q"], True),
    ("ArnNotLike", ["arn:aws:s3:::b/*"], ["arn:aws:s3:::c/k"], True),
    ("ArnNotLike", ["arn:aws:s3:::b/*"], None, True),
    # IfExists
    ("StringEqualsIfExists", ["a"], None, True),
    ("StringEqualsIfExists", ["a"], ["b"], False),
    ("StringNotEqualsIfExists", ["a"], ["a"], False),
    # Null
    ("Null", ["true"], None, True),
    ("Null", ["true"], ["x"], False),
    ("Null", ["false"], ["x"], True),
    ("Null", ["false"], None, False),
    # set operators over a multi-valued key
    ("ForAnyValue:StringEquals", ["a", "b"], ["c", "b"], True),
    ("ForAnyValue:StringEquals", ["a", "b"], ["c", "d"], False),
    ("ForAnyValue:StringEquals", ["a"], None, False),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
    ("ForAllValues:StringEquals", ["a"], None, True),  # vacuous truth: why AWS pairs it with Null
    ("ForAllValues:StringNotEquals", ["x"], ["a", "b"], True),
    ("ForAllValues:StringNotEquals", ["x"], ["a", "x"], False),
    ("ForAnyValue:StringNotEquals", ["x"], ["a", "x"], True),
    ("ForAnyValue:StringLike", ["team-*"], ["owner", "team-ml"], True),
    # no set operator on a multi-valued key: any value (negated: none)
    ("StringEquals", ["a"], ["b", "a"], True),
    ("StringNotEquals", ["a"], ["b", "a"], False),
]


@pytest.mark.parametrize(("operator", "policy", "request_values", "holds"), ROWS)
def test_operator(operator: str, policy: list[object], request_values: list[str] | None, holds: bool) -> None:
    condition = parse_condition({operator: {KEY: policy}})
    context = {} if request_values is None else {KEY.lower(): tuple(request_values)}
    assert condition.holds(context) is holds


def test_every_operator_has_a_row() -> None:
    """A new operator in the table comes with rows, and no row names an operator not in it."""
    used = {op.split(":")[-1].lower().removesuffix("ifexists") for op, *_ in ROWS}
    assert used == {*OPERATORS, "null"}


def test_keys_are_case_insensitive_and_clauses_and() -> None:
    condition = parse_condition({"StringEquals": {"AWS:TAGKEYS": "a", "aws:requestedregion": "eu-west-1"}})
    assert condition.holds({"aws:tagkeys": ("a",), "aws:requestedregion": ("eu-west-1",)})
    assert not condition.holds({"aws:tagkeys": ("a",), "aws:requestedregion": ("us-east-1",)})


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"StringEqualz": {KEY: "a"}}, "unknown condition operator"),
        ({"ForSomeValues:StringEquals": {KEY: "a"}}, "unknown condition set operator"),
        ({"NullIfExists": {KEY: "true"}}, "Null takes no IfExists"),
        ({"Null": {KEY: "maybe"}}, "not true or false"),
        ({"Bool": {KEY: "yes"}}, "not true or false"),
        ({"NumericLessThan": {KEY: "ten"}}, "could not convert"),
        ({"DateLessThan": {KEY: "tomorrow"}}, "Invalid isoformat"),
        ({"IpAddress": {KEY: "10.0.0.300/8"}}, "does not appear to be"),
        ({"StringEquals": {KEY: {"nested": 1}}}, "values must be strings"),
        ({"StringEquals": {KEY: []}}, "values must be strings"),
        ({"StringEquals": {}}, "must map condition keys"),
        ({"StringLike": {KEY: "${aws:username}/*"}}, "policy variable"),
        (["StringEquals"], "Condition must be an object"),
    ],
)
def test_refused_at_parse(block: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_condition(block)


def test_a_key_the_local_cloud_does_not_fill_is_refused_not_read_as_absent() -> None:
    condition = parse_condition({"StringNotEquals": {"sagemaker:InstanceTypes": "ml.p4d.24xlarge"}})
    with pytest.raises(UnsupportedConditionKey, match="sagemaker:instancetypes"):
        condition.holds({})
