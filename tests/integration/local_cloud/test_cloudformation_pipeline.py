"""The real cloud assembly's pipeline stack, deployed as `mlops-edge run` deploys it, on a cloud of
its own (its names are fixed): what the template says is what the services hold, a second deploy
on the same state directory updates nothing, and a hand-changed ``--cdk-out`` is deployed as it is.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud import LocalCloud
from mlops_edge.environment.assembly import Assembly
from mlops_edge.environment.deploy import STATE_MACHINE_OUTPUT, LocalPipeline, deploy_pipeline
from pipeline.config.function_env import Settings
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration


class Deployment:
    """A local cloud on one state directory, started and stopped by the tests, and its deploys."""

    def __init__(self, state_dir: Path, assembly: Path) -> None:
        self.state_dir, self.assembly = state_dir, assembly
        self.cloud: LocalCloud | None = None
        self.pipeline: LocalPipeline | None = None
        self._saved = dict(os.environ)

    def start(self) -> LocalCloud:
        self.cloud = LocalCloud(self.state_dir / "cloud").start()
        os.environ.update(self.cloud.env())
        return self.cloud

    def deploy(self, cdk_out: Path | None = None) -> LocalPipeline:
        assert self.cloud is not None
        self.pipeline = deploy_pipeline(
            cache_dir=self.state_dir / "cache",
            verifier=self.cloud.pipeline_identity,
            cdk_out=cdk_out or self.assembly,
        )
        return self.pipeline

    def stop(self) -> None:
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None
        os.environ.clear()
        os.environ.update(self._saved)

    def client(self, service: str) -> Any:
        assert self.cloud is not None
        return self.cloud.client(service)


@pytest.fixture(scope="module")
def template(cdk_assembly: Any) -> dict[str, Any]:
    return Assembly.read(cdk_assembly.directory).stack_with_output(STATE_MACHINE_OUTPUT).template()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, cdk_assembly: Any) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path_factory.mktemp("cfn-pipeline"), cdk_assembly.directory)
    try:
        deployment.start()
        deployment.deploy()
        yield deployment
    finally:
        deployment.stop()


def _runs_then_stop(sfn: Any, machine_arn: str, name: str) -> None:
    """Start an execution, see it enter its first state, then stop it. (moto 5.2.5 answers 500 to
    a StopExecution that arrives before its interpreter thread has started the execution.)"""
    arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input="{}")["executionArn"]
    wait_until(
        lambda: any(
            e["type"].endswith("StateEntered") for e in sfn.get_execution_history(executionArn=arn)["events"]
        ),
        timeout=30,
    )
    sfn.stop_execution(executionArn=arn)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _physical(deployment: Deployment, logical_id: str) -> str:
    assert deployment.pipeline is not None
    return deployment.pipeline.stack.resources[logical_id][1]


def _role_arn(deployment: Deployment, value: Any) -> str:
    """``{"Fn::GetAtt": [<role>, "Arn"]}`` of the template -> the deployed role's ARN."""
    return str(
        deployment.client("iam").get_role(RoleName=_physical(deployment, value["Fn::GetAtt"][0]))["Role"][
            "Arn"
        ]
    )


def test_every_resource_of_the_template_is_deployed(deployment: Deployment, template: dict[str, Any]) -> None:
    assert deployment.pipeline is not None
    deployed = Counter(kind for kind, _ in deployment.pipeline.stack.resources.values())
    assert deployed == Counter(r["Type"] for r in template["Resources"].values())
    # 12 function roles (11 states' + MonitorDrift), the state machine's, SageMaker's, the approval
    # rule's, the presence rule's, the retraining rule's
    assert deployed["AWS::Lambda::Function"] == 12 and deployed["AWS::IAM::Role"] == 17
    # device presence -> S3 (infra/presence.py); device windows -> MonitorDrift (infra/monitoring.py)
    assert deployed["AWS::IoT::TopicRule"] == 2
    assert deployed["AWS::Events::Rule"] == 2  # model approval; drift retraining (disabled)
    assert deployment.pipeline.stack.status == "CREATE_COMPLETE"


def test_functions_are_the_templates(deployment: Deployment, template: dict[str, Any]) -> None:
    """Timeout, memory, role, packaging, command/handler and the environment's names and values."""
    assert deployment.pipeline is not None
    lam = deployment.client("lambda")
    bucket = deployment.pipeline.bucket
    for logical_id, resource in _of_type(template, "AWS::Lambda::Function").items():
        props = resource["Properties"]
        config = lam.get_function_configuration(FunctionName=_physical(deployment, logical_id))
        assert config["FunctionName"] == props["FunctionName"]
        assert config["Timeout"] == props["Timeout"] and config["MemorySize"] == props["MemorySize"]
        assert config["Role"] == _role_arn(deployment, props["Role"])
        assert config["Role"] == deployment.pipeline.function_roles[config["FunctionName"]]
        assert config.get("PackageType", "Zip") == props.get("PackageType", "Zip")
        if props.get("PackageType") == "Image":
            assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == props["ImageConfig"]["Command"]
        else:
            assert (config["Handler"], config["Runtime"]) == (props["Handler"], props["Runtime"])
        env = config["Environment"]["Variables"]
        assert set(env) == set(props["Environment"]["Variables"])
        for key, value in props["Environment"]["Variables"].items():
            if isinstance(value, str):
                assert env[key] == value, key
        var = Settings.variable
        assert env[var("bucket")] == bucket
        assert env[var("dataset_uri")] == f"s3://{bucket}/datasets/train/"
        assert env[var("mqtt_secret_id")] == deployment.pipeline.verifier_secret
        assert env[var("sourcedir_uri")].startswith("s3://cdk-hnb659fds-assets-123456789012-us-east-1/")


def test_roles_hold_the_templates_policies(deployment: Deployment, template: dict[str, Any]) -> None:
    iam = deployment.client("iam")
    for logical_id, resource in _of_type(template, "AWS::IAM::Role").items():
        role = iam.get_role(RoleName=_physical(deployment, logical_id))["Role"]
        assert role["AssumeRolePolicyDocument"] == _resolve(
            deployment, resource["Properties"]["AssumeRolePolicyDocument"]
        )
    for resource in _of_type(template, "AWS::IAM::Policy").values():
        props = resource["Properties"]
        for role in props["Roles"]:
            document = iam.get_role_policy(
                RoleName=_physical(deployment, role["Ref"]), PolicyName=props["PolicyName"]
            )["PolicyDocument"]
            wanted = props["PolicyDocument"]["Statement"]
            assert [(s["Effect"], s["Action"], s.get("Condition")) for s in document["Statement"]] == [
                (s["Effect"], s["Action"], s.get("Condition")) for s in wanted
            ]
            assert "Fn::" not in json.dumps(document) and '"Ref"' not in json.dumps(document)


def _resolve(deployment: Deployment, node: Any) -> Any:
    """The test's own oracle for the intrinsics these properties use (Join, pseudo-parameter Refs,
    GetAtt Arn of functions and roles)."""
    if isinstance(node, list):
        return [_resolve(deployment, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return separator.join(str(_resolve(deployment, p)) for p in parts)
    if node.get("Ref") == "AWS::Partition":
        return "aws"
    if node.get("Ref") == "AWS::Region":
        return "us-east-1"
    if node.get("Ref") == "AWS::AccountId":
        return "123456789012"
    if "Fn::GetAtt" in node:
        logical_id, attribute = node["Fn::GetAtt"]
        assert attribute == "Arn"
        kind, physical = deployment.pipeline.stack.resources[logical_id]  # type: ignore[union-attr]
        if kind == "AWS::Lambda::Function":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{physical}"
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::123456789012:role/{physical}"
        raise AssertionError(f"unexpected Fn::GetAtt: {node}")
    if "Ref" in node or any(key.startswith("Fn::") for key in node):
        raise AssertionError(f"unexpected intrinsic: {node}")
    return {key: _resolve(deployment, value) for key, value in node.items()}


def test_state_machine_is_the_templates_and_runs(deployment: Deployment, template: dict[str, Any]) -> None:
    """The resolved DefinitionString and role, in the backend executions read from."""
    assert deployment.pipeline is not None
    (props,) = (r["Properties"] for r in _of_type(template, "AWS::StepFunctions::StateMachine").values())
    sfn = deployment.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=deployment.pipeline.state_machine_arn)
    assert json.loads(machine["definition"]) == json.loads(_resolve(deployment, props["DefinitionString"]))
    assert machine["roleArn"] == _role_arn(deployment, props["RoleArn"])
    assert machine["loggingConfiguration"]["level"] == props["LoggingConfiguration"]["Level"]
    assert machine["tracingConfiguration"] == {"enabled": True}
    _runs_then_stop(sfn, machine["stateMachineArn"], "it-cfn-starts")


def test_other_resources_hold_the_templates_properties(
    deployment: Deployment, template: dict[str, Any]
) -> None:
    assert deployment.pipeline is not None
    s3 = deployment.client("s3")
    bucket = deployment.pipeline.bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetPrefix"] == "artifacts/"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    s3.put_object(Bucket=bucket, Key="datasets/train/x.csv", Body=b"a,b\n")  # stored, not enforced by moto
    iot, sm = deployment.client("iot"), deployment.client("sagemaker")
    assert iot.describe_thing_group(thingGroupName=deployment.pipeline.thing_group)["thingGroupProperties"][
        "thingGroupDescription"
    ]
    (iot_policy,) = _of_type(template, "AWS::IoT::Policy").values()
    name = iot_policy["Properties"]["PolicyName"]
    assert len(json.loads(iot.get_policy(policyName=name)["policyDocument"])["Statement"]) == 4
    (group,) = _of_type(template, "AWS::SageMaker::ModelPackageGroup").values()
    assert sm.describe_model_package_group(ModelPackageGroupName=group["Properties"]["ModelPackageGroupName"])
    secret = json.loads(
        deployment.client("secretsmanager").get_secret_value(SecretId=deployment.pipeline.verifier_secret)[
            "SecretString"
        ]
    )
    assert secret["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----") and secret["private_key_pem"]
    retention = {
        g["logGroupName"]: g.get("retentionInDays")
        for g in deployment.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    }
    for resource in _of_type(template, "AWS::Logs::LogGroup").values():
        if resource["Properties"]["LogGroupName"].startswith("/aws/lambda/"):
            assert (
                retention[resource["Properties"]["LogGroupName"]] == resource["Properties"]["RetentionInDays"]
            )


def test_a_second_deploy_on_the_same_state_dir_changes_nothing(deployment: Deployment) -> None:
    """After a restart the stack is still known (its state persisted): nothing collides, nothing
    is published again, and the state machine still runs."""
    assert deployment.pipeline is not None
    before = deployment.pipeline.stack
    deployment.stop()
    deployment.start()
    again = deployment.deploy()
    assert again.stack.changed is False and again.stack.published == []
    assert again.stack.stack_id == before.stack_id and again.stack.resources == before.resources
    sfn = deployment.client("stepfunctions")
    _runs_then_stop(sfn, again.state_machine_arn, "it-cfn-rerun")


def test_cdk_out_is_deployed_as_it_is(
    deployment: Deployment, template: dict[str, Any], tmp_path: Path
) -> None:
    """A hand-changed template (a function's timeout) in a given assembly is what gets deployed."""
    copy = tmp_path / "cdk.out"
    shutil.copytree(deployment.assembly, copy)
    artifact = Assembly.read(copy).stack_with_output(STATE_MACHINE_OUTPUT)
    changed = artifact.template()
    logical_id, function = next(iter(_of_type(changed, "AWS::Lambda::Function").items()))
    function["Properties"]["Timeout"] = 123
    artifact.template_path.write_text(json.dumps(changed))
    pipeline = deployment.deploy(cdk_out=copy)
    assert pipeline.stack.changed and pipeline.stack.status == "UPDATE_COMPLETE"
    name = function["Properties"]["FunctionName"]
    assert deployment.client("lambda").get_function_configuration(FunctionName=name)["Timeout"] == 123
    # and the synthesized assembly puts it back
    deployment.deploy()
    assert (
        deployment.client("lambda").get_function_configuration(FunctionName=name)["Timeout"]
        == (template["Resources"][logical_id]["Properties"]["Timeout"])
    )
