"""What the local cloud's CloudFormation checks before a stack starts: tables per check."""

from __future__ import annotations

from typing import Any

import pytest

from local_cloud.services.cloudformation import template as checks
from local_cloud.services.cloudformation.exceptions import (
    InsufficientCapabilities,
    UnsupportedResourceTypes,
    ValidationError,
)


def _template(*resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    return {"Resources": {lid: {"Type": kind, "Properties": props} for lid, kind, props in resources}}


def test_every_unsupported_type_is_listed_with_its_resources() -> None:
    template = _template(
        ("A", "AWS::EC2::VPC", {}),
        ("B", "AWS::EC2::VPC", {}),
        ("C", "AWS::SNS::Topic", {}),
        ("D", "AWS::S3::Bucket", {}),
    )
    with pytest.raises(UnsupportedResourceTypes) as caught:
        checks.check_types(template, {"AWS::S3::Bucket"})
    assert caught.value.refused == {"AWS::EC2::VPC": ["A", "B"], "AWS::SNS::Topic": ["C"]}
    assert "AWS::EC2::VPC (A, B); AWS::SNS::Topic (C)" in caught.value.message
    checks.check_types(_template(("D", "AWS::S3::Bucket", {})), {"AWS::S3::Bucket"})


@pytest.mark.parametrize(
    ("resources", "needed"),
    [
        ([("L", "AWS::Logs::LogGroup", {})], None),
        ([("R", "AWS::IAM::Role", {})], "CAPABILITY_IAM"),
        ([("P", "AWS::IAM::Policy", {"PolicyName": "p"})], "CAPABILITY_IAM"),
        ([("R", "AWS::IAM::Role", {"RoleName": "r"})], "CAPABILITY_NAMED_IAM"),
        ([("M", "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": "m"})], "CAPABILITY_NAMED_IAM"),
    ],
)
def test_required_capability(resources: list[tuple[str, str, dict[str, Any]]], needed: str | None) -> None:
    assert checks.required_capability(_template(*resources)) == needed


@pytest.mark.parametrize(
    ("granted", "refused"),
    [
        ([], True),
        (["CAPABILITY_IAM"], True),
        (["CAPABILITY_NAMED_IAM"], False),
        (["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"], False),
    ],
)
def test_named_iam_capability(granted: list[str], refused: bool) -> None:
    template = _template(("R", "AWS::IAM::Role", {"RoleName": "r"}))
    if refused:
        with pytest.raises(
            InsufficientCapabilities, match=r"Requires capabilities : \[CAPABILITY_NAMED_IAM\]"
        ):
            checks.check_capabilities(template, granted)
    else:
        checks.check_capabilities(template, granted)


def test_parameters_ssm_values_defaults_and_errors() -> None:
    template = {
        "Parameters": {
            "Version": {
                "Type": "AWS::SSM::Parameter::Value<String>",
                "Default": "/cdk-bootstrap/hnb659fds/version",
            },
            "Plain": {"Type": "String", "Default": "x"},
        },
        "Resources": {},
    }
    store = {"/cdk-bootstrap/hnb659fds/version": "21"}
    assert checks.resolve_parameters(template, {}, store.get) == {"Version": "21", "Plain": "x"}
    assert checks.resolve_parameters(template, {"Plain": "y"}, store.get)["Plain"] == "y"
    with pytest.raises(
        ValidationError, match=r"Unable to fetch parameters \[/cdk-bootstrap/hnb659fds/version\]"
    ):
        checks.resolve_parameters(template, {}, {}.get)
    with pytest.raises(ValidationError, match=r"Parameters: \[Nope\] do not exist in the template"):
        checks.resolve_parameters(template, {"Nope": "1"}, store.get)
    with pytest.raises(ValidationError, match=r"Parameters: \[Needed\] must have values"):
        checks.resolve_parameters({"Parameters": {"Needed": {"Type": "String"}}}, {}, store.get)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ({"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "V"}]}]}, True),
        ({"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "V"}]}, False),
        ({"Fn::Equals": [{"Ref": "V"}, "21"]}, True),
        ({"Fn::And": [{"Fn::Equals": [{"Ref": "V"}, "21"]}, {"Fn::Equals": ["a", "b"]}]}, False),
        ({"Fn::Or": [{"Fn::Equals": [{"Ref": "V"}, "21"]}, {"Fn::Equals": ["a", "b"]}]}, True),
        ({"Fn::EachMemberEquals": [["21", "21"], {"Ref": "V"}]}, True),
        ({"Fn::EachMemberIn": [["a", "b"], ["a", "b", "c"]]}, True),
    ],
)
def test_rule_functions(expression: dict[str, Any], value: bool) -> None:
    rules = {"R": {"Assertions": [{"Assert": expression, "AssertDescription": "nope"}]}}
    if value:
        checks.check_rules({"Rules": rules}, {"V": "21"})
    else:
        with pytest.raises(ValidationError, match="nope"):
            checks.check_rules({"Rules": rules}, {"V": "21"})


def test_a_rule_condition_that_does_not_hold_skips_the_rule() -> None:
    rules = {
        "R": {
            "RuleCondition": {"Fn::Equals": [{"Ref": "V"}, "prod"]},
            "Assertions": [{"Assert": {"Fn::Equals": ["a", "b"]}}],
        }
    }
    checks.check_rules({"Rules": rules}, {"V": "dev"})
    with pytest.raises(ValidationError, match="rule R failed"):
        checks.check_rules({"Rules": rules}, {"V": "prod"})


def test_an_unknown_rule_function_is_refused_loudly() -> None:
    rules = {"R": {"Assertions": [{"Assert": {"Fn::ValueOf": ["P", "VpcId"]}}]}}
    with pytest.raises(ValidationError, match="cannot evaluate Fn::ValueOf"):
        checks.check_rules({"Rules": rules}, {})


def test_templates_parse_from_json_and_yaml_short_forms() -> None:
    assert (
        checks.parse('{"Resources": {"A": {"Type": "AWS::S3::Bucket"}}}')["Resources"]["A"]["Type"]
        == "AWS::S3::Bucket"
    )
    yaml = "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Sub '${AWS::StackName}-x'\n"
    assert checks.parse(yaml)["Resources"]["A"]["Properties"]["BucketName"] == {
        "Fn::Sub": "${AWS::StackName}-x"
    }
    with pytest.raises(ValidationError, match="At least one Resources member"):
        checks.parse("{}")
