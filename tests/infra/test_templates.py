"""Template assertions on the important resources and properties of the three stacks."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = pytest.mark.infra


def _template(synth, key: str):
    from aws_cdk.assertions import Template

    return Template.from_json(synth.templates[key])


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement of every inline/managed policy and role in a template."""
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument")] + [p.get("PolicyDocument") for p in props.get("Policies", [])]
        for doc in docs:
            if doc:
                found.extend(doc["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------- everything


@pytest.mark.parametrize("key", ["pipeline", "edge", "cicd"])
def test_no_broad_permissions(synth, key: str) -> None:
    text = json.dumps(synth.templates[key])
    assert "FullAccess" not in text
    for statement in _statements(synth.templates[key]):
        if statement["Effect"] != "Allow":
            continue  # e.g. the TLS-only bucket policies deny s3:* without TLS
        actions = _as_list(statement.get("Action", []))
        assert "*" not in actions, statement
        assert not any(a.endswith(":*") for a in actions if isinstance(a, str)), statement
        assert "greengrass:*" not in actions


@pytest.mark.parametrize("key", ["pipeline", "cicd"])
def test_buckets_encrypted_tls_only_versioned_private(synth, key: str) -> None:
    buckets = synth.resources(key, "AWS::S3::Bucket")
    assert len(buckets) == 2  # the artifact bucket and its access-log bucket
    for props in (b["Properties"] for b in buckets.values()):
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
    assert sum("LoggingConfiguration" in b["Properties"] for b in buckets.values()) == 1
    policies = synth.resources(key, "AWS::S3::BucketPolicy").values()
    tls_denials = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(tls_denials) == 2


# ------------------------------------------------------------------------------ pipeline


def test_functions_one_per_handler_image_or_zip(synth) -> None:
    from infra.functions import spec_for
    from infra.monitoring import MONITOR_FUNCTION
    from pipeline.statemachine import FUNCTION_NAMES

    functions = synth.resources("pipeline", "AWS::Lambda::Function")
    by_name = {f["Properties"]["FunctionName"]: f["Properties"] for f in functions.values()}
    assert len(by_name) == len(FUNCTION_NAMES) + 1  # the states' functions and MonitorDrift
    for name in (*FUNCTION_NAMES, MONITOR_FUNCTION):
        props = by_name[f"mlops-edge-pipeline-{name.replace('_', '-')}"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogGroup"]
        if spec_for(name).packaging == "image":
            assert props["PackageType"] == "Image"
            assert props["ImageConfig"]["Command"] == [f"lambdas.{name}.handler"]
        else:
            assert props["Runtime"] == "python3.11"
            assert props["Handler"] == f"lambdas.{name}.handler"
    for required in ("export_onnx", "publish_components", "verify_on_device"):
        assert spec_for(required).packaging == "image"


def test_one_image_asset_built_from_lambdas_dockerfile(synth) -> None:
    assets = json.loads(next(synth.outdir.glob("*Pipeline.assets.json")).read_text())
    images = list(assets["dockerImages"].values())
    assert len(images) == 1
    source = images[0]["source"]
    assert source["dockerFile"] == "lambdas/Dockerfile"
    staged = synth.outdir / source["directory"]
    assert sorted(p.name for p in staged.iterdir()) == ["components", "edge_runtime", "lambdas", "pipeline"]
    assert not list(staged.rglob("__pycache__"))


def test_function_environment_carries_configure_defaults(synth) -> None:
    from infra.training import xgboost_image_uri

    functions = synth.resources("pipeline", "AWS::Lambda::Function").values()
    env = next(iter(functions))["Properties"]["Environment"]["Variables"]
    assert env["MLOPS_EDGE_THING_GROUP"] == "mlops-edge-fleet"
    assert env["MLOPS_EDGE_COMPONENT_PREFIX"] == "com.example.mlopsedge"
    assert env["MLOPS_EDGE_MODEL_PACKAGE_GROUP"] == "mlops-edge-models"
    assert env["MLOPS_EDGE_ARTIFACT_PREFIX"] == "artifacts/"
    assert env["MLOPS_EDGE_STATE_PREFIX"] == "state/"
    # The synth has a region (CDK_DEFAULT_REGION): its image URI from the SDK, as a literal.
    assert env["MLOPS_EDGE_TRAINING_IMAGE"] == xgboost_image_uri("eu-west-1")
    assert "s3://" in json.dumps(env["MLOPS_EDGE_SOURCEDIR_URI"])
    for name in ("MLOPS_EDGE_BUCKET", "MLOPS_EDGE_DATASET_URI", "MLOPS_EDGE_TRAINING_INSTANCE_TYPE"):
        assert env[name]


def test_every_function_has_its_own_log_group_with_retention(synth) -> None:
    groups = synth.resources("pipeline", "AWS::Logs::LogGroup").values()
    names = [json.dumps(g["Properties"].get("LogGroupName")) for g in groups]
    assert sum("/aws/lambda/" in n for n in names) == len(
        synth.resources("pipeline", "AWS::Lambda::Function")
    )
    assert all(g["Properties"]["RetentionInDays"] == 30 for g in groups)


def test_state_machine_logs_all_and_traces(synth) -> None:
    machines = list(synth.resources("pipeline", "AWS::StepFunctions::StateMachine").values())
    assert len(machines) == 1
    props = machines[0]["Properties"]
    assert props["StateMachineName"] == "mlops-edge-pipeline"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True


def test_sagemaker_registry_and_thing_group(synth) -> None:
    # The training image (SDK, per region): tests/infra/test_training_image.py.
    t = _template(synth, "pipeline")
    t.has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "mlops-edge-models"}
    )
    t.has_resource_properties("AWS::IoT::ThingGroup", {"ThingGroupName": "mlops-edge-fleet"})


def test_sagemaker_role_reads_only_the_sourcedir_asset_and_its_prefixes(synth) -> None:
    role_policies = [
        s
        for k, r in synth.resources("pipeline", "AWS::IAM::Policy").items()
        if k.startswith("TrainingExecutionRole")
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    text = json.dumps(role_policies)
    assert "/datasets/*" in text and "/artifacts/training/*" in text
    assert "s3:DeleteObject" not in text
    # The one sourcedir asset object, by its content-hash key, in the CDK assets bucket.
    assert re.search(r'-assets-.*"/[0-9a-f]{64}\.gz"', text), text


def test_function_permissions_scoped(synth) -> None:
    text = json.dumps(synth.resources("pipeline", "AWS::IAM::Policy"))
    assert ":components:com.example.mlopsedge.*" in text
    assert "thinggroup/mlops-edge-fleet" in text
    assert "model-package/mlops-edge-models/*" in text


# ----------------------------------------------------------------------------- edge core


def test_vpc_has_no_nat_and_flow_logs(synth) -> None:
    t = _template(synth, "edge")
    t.resource_count_is("AWS::EC2::NatGateway", 0)
    t.resource_count_is("AWS::EC2::VPC", 1)
    t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_instance_hardening(synth) -> None:
    from aws_cdk.assertions import Match

    t = _template(synth, "edge")
    (instance,) = synth.resources("edge", "AWS::EC2::Instance").values()
    props = instance["Properties"]
    assert "KeyName" not in props
    assert props["InstanceType"] == "t3.small"
    assert props["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    t.has_resource_properties(
        "AWS::EC2::LaunchTemplate",
        {"LaunchTemplateData": {"MetadataOptions": Match.object_like({"HttpTokens": "required"})}},
    )
    # No account in this synth: the AMI falls back to the SSM parameter (tests/infra/test_core_ami.py).
    assert "ssm" in json.dumps(synth.templates["edge"]["Parameters"]).lower()
    (group,) = synth.resources("edge", "AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]


def test_user_data_installs_and_provisions_the_nucleus(synth) -> None:
    (instance,) = synth.resources("edge", "AWS::EC2::Instance").values()
    script = json.dumps(instance["Properties"]["UserData"])
    for expected in (
        "java-17-amazon-corretto-headless",
        "python3.11",
        "Greengrass.jar",
        "--provision true",
        "--thing-name mlops-edge-core-1",
        "--thing-group-name mlops-edge-fleet",
        "--thing-policy-name mlops-edge-fleet-core-policy",
        "--tes-role-name mlops-edge-fleet-TokenExchangeRole",
        "--tes-role-alias-name mlops-edge-fleet-TokenExchangeRoleAlias",
        "--component-default-user ggc_user:ggc_group",
        "--setup-system-service true",
    ):
        assert expected in script, expected


def test_iot_policies_scope_topics_to_the_connected_thing(synth) -> None:
    policies = {
        p["Properties"]["PolicyName"]: p["Properties"]["PolicyDocument"]
        for p in synth.resources("edge", "AWS::IoT::Policy").values()
    }
    core = json.dumps(policies["mlops-edge-fleet-core-policy"])
    assert "topic/edge/${iot:Connection.Thing.ThingName}/*" in core
    assert "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*" in core
    assert "greengrass:ResolveComponentCandidates" in core and "greengrass:*" not in core
    tes = json.dumps(policies["GreengrassTESCertificatePolicymlops-edge-fleet-TokenExchangeRoleAlias"])
    assert (
        "iot:AssumeRoleWithCertificate" in tes and "rolealias/mlops-edge-fleet-TokenExchangeRoleAlias" in tes
    )


def test_token_exchange_role_and_alias(synth) -> None:
    t = _template(synth, "edge")
    t.has_resource_properties("AWS::IoT::RoleAlias", {"RoleAlias": "mlops-edge-fleet-TokenExchangeRoleAlias"})
    t.has_resource_properties(
        "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": "mlops-edge-fleet-TokenExchangeRoleAccess"}
    )
    roles = synth.resources("edge", "AWS::IAM::Role").values()
    tes = [r for r in roles if r["Properties"].get("RoleName") == "mlops-edge-fleet-TokenExchangeRole"]
    assert "credentials.iot.amazonaws.com" in json.dumps(tes[0]["Properties"]["AssumeRolePolicyDocument"])


def test_instance_role_can_only_provision_its_own_thing(synth) -> None:
    statements = [
        s
        for k, p in synth.resources("edge", "AWS::IAM::Policy").items()
        if k.startswith("CoreProvisioningPolicy")
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_sid = {s["Sid"]: s for s in statements}
    assert "thing/mlops-edge-core-1" in json.dumps(by_sid["RegisterThing"]["Resource"])
    assert "iam:PolicyARN" in json.dumps(by_sid["AttachTokenExchangeAccessPolicy"]["Condition"])
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert not {"iam:CreateRole", "iam:PassRole", "iot:CreatePolicy", "iot:CreateRoleAlias"} & actions


# ------------------------------------------------------------------ pipeline: approval rule


def _approval_rule(synth) -> dict[str, Any]:
    rules = synth.resources("pipeline", "AWS::Events::Rule").values()
    (rule,) = [r for r in rules if r["Properties"]["EventPattern"]["source"] == ["aws.sagemaker"]]
    return rule


def test_approval_rule_is_the_pipeline_stacks_not_the_cicd_stacks(synth) -> None:
    """Deploying the pipeline stack alone (``mlops-edge run``; AWS without CI/CD) gets approvals."""
    assert not synth.resources("cicd", "AWS::Events::Rule")
    assert "events.amazonaws.com" not in json.dumps(synth.resources("cicd", "AWS::IAM::Role"))
    _approval_rule(synth)


def test_approval_rule_starts_deploy_only_path(synth) -> None:
    rule = _approval_rule(synth)
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"]["ModelApprovalStatus"] == ["Approved"]
    assert pattern["detail"]["ModelPackageGroupName"] == ["mlops-edge-models"]
    target = rule["Properties"]["Targets"][0]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-ModelPackageArn": "$.detail.ModelPackageArn"}
    assert '"model_package_arn":<detail-ModelPackageArn>' in transformer["InputTemplate"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    (machine,) = synth.resources("pipeline", "AWS::StepFunctions::StateMachine")
    assert target["Arn"] == {"Ref": machine}  # this stack's state machine, not one found by name


def test_approval_rule_role_may_only_start_the_state_machine(synth) -> None:
    target = _approval_rule(synth)["Properties"]["Targets"][0]
    role = target["RoleArn"]["Fn::GetAtt"][0]
    trust = synth.templates["pipeline"]["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "events.amazonaws.com"}]
    (machine,) = synth.resources("pipeline", "AWS::StepFunctions::StateMachine")
    statements = [
        s
        for p in synth.resources("pipeline", "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Ref": machine}}
    ]


def test_approval_input_is_valid_execution_input_and_skips_own_approvals(synth) -> None:
    import jsonschema

    from infra.approval import PIPELINE_APPROVAL_PREFIX
    from infra.functions import REPO_ROOT

    rule = _approval_rule(synth)
    transformer = rule["Properties"]["Targets"][0]["InputTransformer"]
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-edge-models/3"
    document = json.loads(transformer["InputTemplate"].replace("<detail-ModelPackageArn>", json.dumps(arn)))
    schema = json.loads((REPO_ROOT / "pipeline" / "config" / "input.schema.json").read_text())
    jsonschema.validate(document, schema)
    assert document["model_package_arn"] == arn
    # The pipeline's own approvals (promote, after verification) must not restart it.
    pattern = json.dumps(rule["Properties"]["EventPattern"])
    assert PIPELINE_APPROVAL_PREFIX in pattern
    promote = (REPO_ROOT / "lambdas" / "core" / "promote.py").read_text()
    assert f'ApprovalDescription=f"{PIPELINE_APPROVAL_PREFIX}' in promote


# --------------------------------------------------------------------------------- CI/CD


def test_pipeline_stages_and_actions(synth) -> None:
    (pipeline,) = synth.resources("cicd", "AWS::CodePipeline::Pipeline").values()
    stages = pipeline["Properties"]["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "TestAndSynth", "Deploy", "Run"]
    source = stages[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "example-org/mlops-edge"
    run = stages[3]["Actions"][0]
    assert run["ActionTypeId"]["Provider"] == "StepFunctions"
    assert run["Configuration"]["InputType"] == "FilePath"
    assert run["Configuration"]["Input"].endswith(
        "::pipeline/config/example-input.json"
    )  # <artifact>::<path>


def test_build_runs_tests_and_pinned_cdk_cli(synth) -> None:
    projects = [p["Properties"] for p in synth.resources("cicd", "AWS::CodeBuild::Project").values()]
    specs = " ".join(p["Source"]["BuildSpec"] for p in projects)
    assert "scripts/test" in specs
    assert "aws-cdk@2.1148.1 synth" in specs and "aws-cdk@2.1148.1 deploy" in specs
    assert all(p.get("EncryptionKey") for p in projects)


def test_artifacts_encrypted_with_rotating_key(synth) -> None:
    t = _template(synth, "cicd")
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_verifier_identity(synth) -> None:
    policies = {
        p["Properties"]["PolicyName"]: json.dumps(p["Properties"]["PolicyDocument"])
        for p in synth.resources("pipeline", "AWS::IoT::Policy").values()
    }
    verifier = policies["mlops-edge-pipeline-verifier"]
    assert "topic/edge/*/inference/request" in verifier and "topicfilter/edge/*/inference/result" in verifier
    assert "iot:Publish" in verifier and "$aws" not in verifier
    (secret,) = synth.resources("pipeline", "AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["Name"] == "mlops-edge-pipeline/verifier-mqtt"
    functions = synth.resources("pipeline", "AWS::Lambda::Function").values()
    env = next(iter(functions))["Properties"]["Environment"]["Variables"]
    assert env["MLOPS_EDGE_MQTT_SECRET_ID"]


def test_codecommit_source_is_configurable() -> None:
    """The other source kind, on a bare CI/CD stack (no need to synthesize the whole app again)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.app import REPO_ROOT
    from infra.cicd_stack import CiCdStack
    from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

    config = EdgeConfig(source="codecommit", codecommit_repository="edge-repo", branch="release")
    app = cdk.App(context=load_cdk_json_context(REPO_ROOT / "cdk.json"))  # its feature flags
    stack = CiCdStack(app, "CiCd", config=config, deploy_stacks=["A", "B"])
    (pipeline,) = Template.from_stack(stack).find_resources("AWS::CodePipeline::Pipeline").values()
    source = pipeline["Properties"]["Stages"][0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeCommit"
    assert source["Configuration"]["RepositoryName"] == "edge-repo"
    assert source["Configuration"]["BranchName"] == "release"
