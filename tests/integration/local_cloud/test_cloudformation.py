"""The local cloud's CloudFormation on small templates: one row per intrinsic function the project's
templates use, the checks CloudFormation makes before it starts (resource types, capabilities, SSM
parameters, Rules), rollbacks, and updates."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import LocalCloud

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "us-east-1"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mlops-edge-pipeline/verifier-mqtt-AbC123"


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _create(cloud: LocalCloud, name: str, template: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    cfn = cloud.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), **kwargs)
    return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])


def _events(cloud: LocalCloud, name: str) -> list[dict[str, Any]]:
    return list(reversed(cloud.client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]))


# -- intrinsic functions: one row each ---------------------------------------------------------------
@pytest.fixture(scope="module")
def intrinsics(local_cloud: LocalCloud) -> dict[str, Any]:
    """One stack whose outputs evaluate every intrinsic of the table below."""
    suffix = _suffix()
    group = f"/it/cfn/{suffix}"
    ssm_name = f"/it/cfn/{suffix}/version"
    local_cloud.client("ssm").put_parameter(Name=ssm_name, Value="21", Type="String")
    exporter = {
        "Resources": {
            "Exported": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"{group}/exported"}}
        },
        "Outputs": {"Out": {"Value": {"Ref": "Exported"}, "Export": {"Name": f"it-export-{suffix}"}}},
    }
    _create(local_cloud, f"it-exporter-{suffix}", exporter)
    template = {
        "Parameters": {
            "Plain": {"Type": "String", "Default": "plain-value"},
            "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": ssm_name},
        },
        "Mappings": {"Accounts": {REGION: {"account": "683313688378"}}},
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}},
        "Outputs": {key: {"Value": value} for key, (value, _) in _rows(group, suffix).items()},
    }
    stack = _create(local_cloud, f"it-intrinsics-{suffix}", template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]},
        "group": group,
        "suffix": suffix,
    }


def _rows(group: str, suffix: str) -> dict[str, tuple[Any, str]]:
    """Output name -> (expression, expected value)."""
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
    return {
        "RefResource": ({"Ref": "Group"}, group),
        "RefParameter": ({"Ref": "Plain"}, "plain-value"),
        "RefSsmParameter": ({"Ref": "FromSsm"}, "21"),
        "RefAccountId": ({"Ref": "AWS::AccountId"}, ACCOUNT),
        "RefRegion": ({"Ref": "AWS::Region"}, REGION),
        "RefPartition": ({"Ref": "AWS::Partition"}, "aws"),
        "RefUrlSuffix": ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        "RefStackName": ({"Ref": "AWS::StackName"}, f"it-intrinsics-{suffix}"),
        "GetAttArn": ({"Fn::GetAtt": ["Group", "Arn"]}, arn),
        "Join": (
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":states:::lambda:invoke"]]},
            "arn:aws:states:::lambda:invoke",
        ),
        "JoinGetAtt": ({"Fn::Join": ["", [{"Fn::GetAtt": ["Group", "Arn"]}, "/x"]]}, f"{arn}/x"),
        "Sub": (
            {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
            f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}",
        ),
        "SubRefAndGetAtt": ({"Fn::Sub": "${Group}|${Group.Arn}"}, f"{group}|{arn}"),
        "SubVariables": ({"Fn::Sub": ["${x}-y", {"x": {"Ref": "Plain"}}]}, "plain-value-y"),
        "SubLiteral": ({"Fn::Sub": "${!Literal}"}, "${Literal}"),
        "Select": ({"Fn::Select": [1, ["a", "b", "c"]]}, "b"),
        "SplitSelect": (
            {"Fn::Select": [6, {"Fn::Split": [":", SECRET_ARN]}]},
            "mlops-edge-pipeline/verifier-mqtt-AbC123",
        ),
        # CDK's secret name from its ARN: the first four dash-separated parts of the name-suffix
        "SecretName": (
            {
                "Fn::Join": [
                    "-",
                    [
                        {
                            "Fn::Select": [
                                i,
                                {"Fn::Split": ["-", {"Fn::Select": [6, {"Fn::Split": [":", SECRET_ARN]}]}]},
                            ]
                        }
                        for i in range(4)
                    ],
                ]
            },
            "mlops-edge-pipeline/verifier-mqtt",
        ),
        "FindInMap": ({"Fn::FindInMap": ["Accounts", {"Ref": "AWS::Region"}, "account"]}, "683313688378"),
        "Base64": ({"Fn::Base64": "#!/bin/bash\n"}, "IyEvYmluL2Jhc2gK"),
        "GetAZs": ({"Fn::Select": [0, {"Fn::GetAZs": ""}]}, f"{REGION}a"),
        "ImportValue": ({"Fn::ImportValue": f"it-export-{suffix}"}, f"{group}/exported"),
    }


@pytest.mark.parametrize("output", list(_rows("g", "s")))
def test_intrinsic(intrinsics: dict[str, Any], output: str) -> None:
    expected = _rows(intrinsics["group"], intrinsics["suffix"])[output][1]
    assert intrinsics["outputs"][output] == expected


# -- refused up front ------------------------------------------------------------------------------
def test_unsupported_types_are_refused_all_listed_nothing_created(local_cloud: LocalCloud) -> None:
    name, group = f"it-refused-{_suffix()}", f"/it/cfn/refused/{_suffix()}"
    template = {
        "Resources": {
            "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}},
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}}},
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Custom": {"Type": "Custom::Thing", "Properties": {"ServiceToken": "arn"}},
        }
    }
    with pytest.raises(ClientError) as caught:
        _create(local_cloud, name, template)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    for listed in (
        "AWS::EC2::VPC (Vpc)",
        "AWS::EC2::Subnet (Subnet)",
        "AWS::SNS::Topic (Topic)",
        "Custom::Thing (Custom)",
    ):
        assert listed in error["Message"]
    assert "AWS::Logs::LogGroup" not in error["Message"]
    assert not local_cloud.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    with pytest.raises(ClientError, match="does not exist"):
        local_cloud.client("cloudformation").describe_stacks(StackName=name)


def test_the_edge_core_stack_is_refused_with_its_ec2_types(
    local_cloud: LocalCloud, cdk_assembly: Any
) -> None:
    from mlops_edge.environment.assembly import Assembly

    edge = next(
        s
        for s in Assembly.read(cdk_assembly.directory).stacks()
        if "AWS::EC2::Instance" in json.dumps(s.template())
    )
    with pytest.raises(ClientError) as caught:
        local_cloud.client("cloudformation").create_stack(
            StackName=f"it-edge-{_suffix()}",
            TemplateBody=edge.template_path.read_text(),
            Capabilities=["CAPABILITY_IAM"],
        )
    message = caught.value.response["Error"]["Message"]
    for kind in ("AWS::EC2::Instance", "AWS::EC2::VPC", "AWS::EC2::SecurityGroup", "AWS::IoT::RoleAlias"):
        assert kind in message


def test_named_iam_needs_its_capability(local_cloud: LocalCloud) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": f"it-named-{_suffix()}",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []},
        },
    }
    with pytest.raises(ClientError) as caught:
        _create(
            local_cloud,
            f"it-caps-{_suffix()}",
            {"Resources": {"Role": role}},
            Capabilities=["CAPABILITY_IAM"],
        )
    assert caught.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
    assert caught.value.response["Error"]["Message"] == "Requires capabilities : [CAPABILITY_NAMED_IAM]"


@pytest.mark.parametrize(("version", "accepted"), [("6", True), ("21", True), ("5", False)])
def test_rules_are_checked_with_ssm_parameters(local_cloud: LocalCloud, version: str, accepted: bool) -> None:
    """CDK's CheckBootstrapVersion rule (Fn::Not of Fn::Contains on the SSM-typed parameter)."""
    ssm_name = f"/it/cfn/bootstrap/{_suffix()}"
    local_cloud.client("ssm").put_parameter(Name=ssm_name, Value=version, Type="String")
    template = {
        "Parameters": {
            "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": ssm_name}
        },
        "Rules": {
            "CheckBootstrapVersion": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Not": [
                                {"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}
                            ]
                        },
                        "AssertDescription": "CDK bootstrap stack version 6 required.",
                    }
                ]
            }
        },
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}},
    }
    name = f"it-rules-{_suffix()}"
    if accepted:
        assert _create(local_cloud, name, template)["StackStatus"] == "CREATE_COMPLETE"
    else:
        with pytest.raises(ClientError, match="CDK bootstrap stack version 6 required"):
            _create(local_cloud, name, template)


def test_a_missing_ssm_parameter_is_refused_as_aws_words_it(local_cloud: LocalCloud) -> None:
    template = {
        "Parameters": {"V": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/it/cfn/missing"}},
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}},
    }
    with pytest.raises(
        ClientError, match=r"Unable to fetch parameters \[/it/cfn/missing\] from parameter store"
    ):
        _create(local_cloud, f"it-ssm-{_suffix()}", template)


# -- rollbacks ---------------------------------------------------------------------------------------
def _role(suffix: str) -> dict[str, Any]:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}


def test_a_failed_resource_rolls_the_stack_back(local_cloud: LocalCloud) -> None:
    """An image function whose image was never published fails as on AWS; the role made before it
    is deleted, the call itself succeeds and the events say why."""
    suffix = _suffix()
    template = {
        "Resources": {
            "Role": _role(suffix),
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": f"it-image-{suffix}",
                    "PackageType": "Image",
                    "Code": {"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nowhere-{suffix}:latest"},
                    "ImageConfig": {"Command": ["lambdas.configure.handler"]},
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                },
            },
            "Later": {**_role(suffix), "DependsOn": "Function"},
        },
        # reading a failed stack must not create what it never made (moto's map is lazy)
        "Outputs": {"LaterArn": {"Value": {"Fn::GetAtt": ["Later", "Arn"]}}},
    }
    name = f"it-rollback-{suffix}"
    stack = _create(local_cloud, name, template, Capabilities=["CAPABILITY_IAM"])
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = _events(local_cloud, name)
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and failed[0]["LogicalResourceId"] == "Function"
    assert "does not exist" in failed[0]["ResourceStatusReason"]
    role_events = [e for e in events if e["LogicalResourceId"] == "Role"]
    assert [e["ResourceStatus"] for e in role_events][-1] == "DELETE_COMPLETE"
    with pytest.raises(ClientError, match=r"NoSuchEntity|cannot be found"):
        local_cloud.client("iam").get_role(RoleName=role_events[-1]["PhysicalResourceId"])
    with pytest.raises(ClientError, match="ROLLBACK_COMPLETE state and can not be updated"):
        local_cloud.client("cloudformation").update_stack(StackName=name, TemplateBody=json.dumps(template))
    cfn = local_cloud.client("cloudformation")
    assert "Outputs" not in cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert cfn.list_stack_resources(StackName=name)["StackResourceSummaries"] == []
    roles = local_cloud.client("iam").list_roles()["Roles"]
    assert not [r["RoleName"] for r in roles if r["RoleName"].startswith(f"{name}-")]


def test_a_property_the_local_cloud_does_not_apply_fails_the_resource_by_name(
    local_cloud: LocalCloud,
) -> None:
    name = f"it-prop-{_suffix()}"
    template = {
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"WebsiteConfiguration": {"IndexDocument": "i.html"}},
            }
        }
    }
    assert _create(local_cloud, name, template)["StackStatus"] == "ROLLBACK_COMPLETE"
    reason = next(e for e in _events(local_cloud, name) if e["ResourceStatus"] == "CREATE_FAILED")[
        "ResourceStatusReason"
    ]
    assert "does not apply WebsiteConfiguration of AWS::S3::Bucket" in reason


# -- updates -----------------------------------------------------------------------------------------
def test_update_changes_in_place_refuses_no_op_and_rolls_back_a_failure(local_cloud: LocalCloud) -> None:
    suffix = _suffix()
    group = f"/it/cfn/update/{suffix}"
    cfn, logs = local_cloud.client("cloudformation"), local_cloud.client("logs")

    def template(days: int, extra: dict[str, Any] | None = None) -> str:
        resources = {
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": group, "RetentionInDays": days},
            }
        }
        return json.dumps({"Resources": {**resources, **(extra or {})}})

    def retention() -> int:
        return int(logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"])

    name = f"it-update-{suffix}"
    cfn.create_stack(StackName=name, TemplateBody=template(7))
    assert retention() == 7
    cfn.update_stack(StackName=name, TemplateBody=template(14))
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert retention() == 14
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=name, TemplateBody=template(14))
    # the same template with other tags is an update, as on AWS; the same tags again are not
    cfn.update_stack(StackName=name, TemplateBody=template(14), Tags=[{"Key": "team", "Value": "edge"}])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE" and stack["Tags"] == [{"Key": "team", "Value": "edge"}]
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=name, TemplateBody=template(14), Tags=[{"Key": "team", "Value": "edge"}])
    broken = {
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"WebsiteConfiguration": {"IndexDocument": "i"}}}
    }
    cfn.update_stack(StackName=name, TemplateBody=template(30, broken))
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert retention() == 14
    cfn.delete_stack(StackName=name)
    assert not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]


def test_an_eventbridge_rule_with_its_targets_and_a_policy_attachment(local_cloud: LocalCloud) -> None:
    """The pipeline stack's approval rule (infra/approval.py), as synthesized (pattern with $or, input
    transformer, retry policy, role), and an IoT policy attached to a certificate. (The whole
    pipeline stack, its rule included, is deployed by test_cloudformation_pipeline.py.)"""
    suffix = _suffix()
    iot = local_cloud.client("iot")
    certificate = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    pattern = {
        "detail": {
            "ModelPackageGroupName": ["mlops-edge-models"],
            "ModelApprovalStatus": ["Approved"],
            "$or": [
                {"ApprovalDescription": [{"exists": False}]},
                {"ApprovalDescription": [{"anything-but": {"prefix": "verified on every device"}}]},
            ],
        },
        "detail-type": ["SageMaker Model Package State Change"],
        "source": ["aws.sagemaker"],
    }
    target = {
        "Arn": {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:x"},
        "Id": "Target0",
        "InputTransformer": {
            "InputPathsMap": {"detail-ModelPackageArn": "$.detail.ModelPackageArn"},
            "InputTemplate": '{"model_package_arn":<detail-ModelPackageArn>}',
        },
        "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3},
        "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
    }
    statement = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}
    template = {
        "Resources": {
            "Role": _role(suffix),
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": pattern,
                    "State": "ENABLED",
                    "Targets": [target],
                    "Tags": [{"Key": "project", "Value": "mlops-edge"}],
                },
            },
            "Policy": {
                "Type": "AWS::IoT::Policy",
                "Properties": {
                    "PolicyName": f"it-policy-{suffix}",
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]},
                },
            },
            "Attachment": {
                "Type": "AWS::IoT::PolicyPrincipalAttachment",
                "Properties": {"PolicyName": {"Ref": "Policy"}, "Principal": certificate},
            },
        }
    }
    name = f"it-events-{suffix}"
    assert (
        _create(local_cloud, name, template, Capabilities=["CAPABILITY_IAM"])["StackStatus"]
        == "CREATE_COMPLETE"
    )
    cfn = local_cloud.client("cloudformation")
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    events = local_cloud.client("events")
    rule = events.describe_rule(Name=resources["Rule"])
    assert json.loads(rule["EventPattern"]) == pattern and rule["State"] == "ENABLED"
    (deployed,) = events.list_targets_by_rule(Rule=resources["Rule"])["Targets"]
    assert deployed["Arn"] == f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:x"
    assert deployed["InputTransformer"]["InputPathsMap"] == target["InputTransformer"]["InputPathsMap"]
    assert deployed["RoleArn"].endswith(f"/{resources['Role']}")
    assert events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"] == [
        {"Key": "project", "Value": "mlops-edge"}
    ]
    assert (
        iot.list_attached_policies(target=certificate)["policies"][0]["policyName"] == f"it-policy-{suffix}"
    )
    cfn.delete_stack(StackName=name)
    assert not iot.list_attached_policies(target=certificate)["policies"]
    with pytest.raises(ClientError):
        events.describe_rule(Name=resources["Rule"])
