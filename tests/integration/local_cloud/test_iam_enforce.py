"""IAM enforced at the endpoint (``MLOPS_EDGE_IAM=enforce``): roles, policies and functions made
through boto3 against a real endpoint on an ephemeral port; functions run as their role, the state
machine's integrations as its role, and refusals read as AWS's."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_cloud import LocalCloud
from local_cloud.iam import iam_usage
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration
ACCOUNT, REGION = "123456789012", "us-east-1"

#: one handler that makes the boto3 calls its event lists and reports each outcome
HANDLER = """
import boto3, botocore.exceptions

def handler(event, context):
    out = []
    for service, operation, params in event["calls"]:
        try:
            result = getattr(boto3.client(service), operation)(**params)
            result.pop("ResponseMetadata", None)
            out.append({"ok": {k: str(v) for k, v in result.items()}})
        except botocore.exceptions.ClientError as exc:
            out.append({"error": exc.response["Error"].get("Code"), "message": exc.response["Error"].get("Message")})
    return {"who": boto3.client("sts").get_caller_identity()["Arn"], "results": out}
"""


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("calls.py", HANDLER)
    return buf.getvalue()


def _trust(service: str, **condition: Any) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_EDGE_IAM", "enforce")
        cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("iam-enforce")).start()
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture
def bucket(cloud: LocalCloud) -> str:
    name = f"iam-{uuid.uuid4().hex[:8]}"
    cloud.client("s3").create_bucket(Bucket=name)
    return name


def make_role(cloud: LocalCloud, *statements: dict[str, Any], trust: str | None = None) -> str:
    iam = cloud.client("iam")
    name = f"role-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust or _trust("lambda.amazonaws.com"))
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="Inline", PolicyDocument=_policy(*statements))
    return str(arn["Role"]["Arn"])


def make_function(cloud: LocalCloud, role_arn: str) -> str:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    cloud.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role_arn,
        Handler="calls.handler",
        Code={"ZipFile": _zip()},
        Timeout=30,
    )
    return name


def run(cloud: LocalCloud, function: str, *calls: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    out = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps({"calls": calls}))
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    return dict(body)


def decisions(cloud: LocalCloud) -> list[dict[str, Any]]:
    path = Path(cloud.state_dir) / "iam" / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_function_runs_as_its_role_allowed_passes_missing_action_refused(
    cloud: LocalCloud, bucket: str
) -> None:
    role = make_role(
        cloud, {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    )
    fn = make_function(cloud, role)
    out = run(
        cloud,
        fn,
        ("s3", "put_object", {"Bucket": bucket, "Key": "a.txt", "Body": "x"}),
        ("s3", "list_objects_v2", {"Bucket": bucket}),
    )
    role_name = role.rsplit("/", 1)[-1]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{fn}"
    assert out["who"] == session  # Lambda names the session after the function
    put, listing = out["results"]
    assert "ok" in put
    assert listing == {
        "error": "AccessDenied",
        "message": f"User: {session} is not authorized to perform: s3:ListBucket on resource: "
        f'"arn:aws:s3:::{bucket}" because no identity-based policy allows the s3:ListBucket action',
    }
    logged = [d for d in decisions(cloud) if d.get("session") == fn and d["type"] == "decision"]
    assert [(d["action"], d["decision"], d["refused"]) for d in logged] == [
        ("s3:PutObject", "Allowed", False),
        ("s3:ListBucket", "ImplicitlyDenied", True),
    ]
    assert logged[0]["statements"] == ["Inline#0"]


def test_deny_wins_over_allow(cloud: LocalCloud, bucket: str) -> None:
    role = make_role(
        cloud,
        {"Effect": "Allow", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {
            "Sid": "NoSecrets",
            "Effect": "Deny",
            "Action": "s3:Put*",
            "Resource": f"arn:aws:s3:::{bucket}/secret/*",
        },
    )
    fn = make_function(cloud, role)
    out = run(
        cloud,
        fn,
        ("s3", "put_object", {"Bucket": bucket, "Key": "public/a", "Body": "x"}),
        ("s3", "put_object", {"Bucket": bucket, "Key": "secret/a", "Body": "x"}),
    )
    ok, denied = out["results"]
    assert "ok" in ok
    assert denied["error"] == "AccessDenied"
    assert denied["message"].endswith(
        f'is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::{bucket}/secret/a" '
        "with an explicit deny in an identity-based policy"
    )


def test_bucket_policy_deny_applies_to_a_role(cloud: LocalCloud, bucket: str) -> None:
    role = make_role(
        cloud, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    )
    cloud.client("s3").put_object(Bucket=bucket, Key="k", Body=b"v")
    cloud.client("s3").put_bucket_policy(
        Bucket=bucket,
        Policy=_policy(
            {
                "Effect": "Deny",
                "Principal": {"AWS": role},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            # CDK's enforceSSL statement: our clients count as HTTPS, so it never applies
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ),
    )
    out = run(cloud, make_function(cloud, role), ("s3", "get_object", {"Bucket": bucket, "Key": "k"}))
    assert out["results"][0]["error"] == "AccessDenied"
    assert out["results"][0]["message"].endswith("with an explicit deny in a resource-based policy")
    cloud.client("s3").delete_bucket_policy(Bucket=bucket)  # an S3 policy write: caches go
    out = run(cloud, make_function(cloud, role), ("s3", "get_object", {"Bucket": bucket, "Key": "k"}))
    assert "ok" in out["results"][0]


def test_policy_change_takes_effect_on_the_next_call(cloud: LocalCloud, bucket: str) -> None:
    role = make_role(cloud)
    fn = make_function(cloud, role)
    first = run(cloud, fn, ("s3", "list_objects_v2", {"Bucket": bucket}))["results"][0]
    assert first["error"] == "AccessDenied"
    cloud.client("iam").put_role_policy(
        RoleName=role.rsplit("/", 1)[-1],
        PolicyName="Later",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
        ),
    )
    assert "ok" in run(cloud, fn, ("s3", "list_objects_v2", {"Bucket": bucket}))["results"][0]


def test_dependent_action_is_required(cloud: LocalCloud) -> None:
    """CreateTrainingJob passes RoleArn to SageMaker: the caller needs iam:PassRole on it, with
    iam:PassedToService; refused before any job starts."""
    job_role = make_role(cloud, trust=_trust("sagemaker.amazonaws.com"))
    role = make_role(cloud, {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"})
    request = {
        "TrainingJobName": f"job-{uuid.uuid4().hex[:8]}",
        "RoleArn": job_role,
        "AlgorithmSpecification": {"TrainingImage": "example/xgboost:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://nowhere/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    result = run(cloud, make_function(cloud, role), ("sagemaker", "create_training_job", request))["results"][
        0
    ]
    assert result["error"] == "AccessDeniedException"
    assert f"is not authorized to perform: iam:PassRole on resource: {job_role}" in result["message"]


def test_greengrass_dependent_iot_actions_are_required(cloud: LocalCloud) -> None:
    """The issue's example: ListEffectiveDeployments alone is not enough on AWS."""
    role = make_role(
        cloud, {"Effect": "Allow", "Action": "greengrass:ListEffectiveDeployments", "Resource": "*"}
    )
    call = ("greengrassv2", "list_effective_deployments", {"coreDeviceThingName": "edge-x"})
    result = run(cloud, make_function(cloud, role), call)["results"][0]
    assert result["error"] == "AccessDeniedException"
    assert "is not authorized to perform: iot:DescribeJobExecution on resource: " in result["message"]
    assert f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/edge-x" in result["message"]


def test_role_lambda_may_not_assume_is_refused_at_create(cloud: LocalCloud) -> None:
    role = make_role(cloud, trust=_trust("ec2.amazonaws.com"))
    with pytest.raises(ClientError) as caught:
        make_function(cloud, role)
    assert caught.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "The role defined for the function cannot be assumed by Lambda.",
    }


def _state_machine(cloud: LocalCloud, function: str, *statements: dict[str, Any]) -> tuple[str, str]:
    """A state machine (role trusted as CDK writes it) invoking ``function``; its role's policy."""
    trust = _trust(
        "states.amazonaws.com",
        ArnLike={"aws:SourceArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:*"},
        StringEquals={"aws:SourceAccount": ACCOUNT},
    )
    role = make_role(cloud, *statements, trust=trust)
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function, "Payload": {"calls": []}},
                "End": True,
            }
        },
    }
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )
    return str(arn["stateMachineArn"]), role


def _execute(cloud: LocalCloud, state_machine: str) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=state_machine, name=f"x-{uuid.uuid4().hex[:8]}", input="{}"
    )
    return dict(
        wait_until(
            lambda: (
                (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING"
                and d
            ),
            timeout=60,
            interval=0.2,
        )
    )


def test_state_machine_without_invoke_permission_fails_with_access_denied(cloud: LocalCloud) -> None:
    fn = make_function(cloud, make_role(cloud))
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    state_machine, role = _state_machine(
        cloud, fn, {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": fn_arn}
    )
    done = _execute(cloud, state_machine)
    assert done["status"] == "FAILED"
    name = state_machine.rsplit(":", 1)[-1]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role.rsplit('/', 1)[-1]}/{name}"
    assert done["error"] == "Lambda.AccessDeniedException"
    assert (
        f"User: {session} is not authorized to perform: lambda:InvokeFunction on resource: {fn_arn} "
        "because no identity-based policy allows the lambda:InvokeFunction action"
    ) in done["cause"]


def test_state_machine_with_invoke_permission_succeeds_as_its_role(cloud: LocalCloud) -> None:
    fn = make_function(cloud, make_role(cloud))
    fn_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
    state_machine, role = _state_machine(
        cloud, fn, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [fn_arn, f"{fn_arn}:*"]}
    )
    done = _execute(cloud, state_machine)
    assert done["status"] == "SUCCEEDED", done
    logged = [d for d in decisions(cloud) if d.get("role") == role and d["type"] == "decision"]
    assert [(d["action"], d["decision"]) for d in logged] == [("lambda:InvokeFunction", "Allowed")]


def test_state_machine_role_states_may_not_assume_fails_the_task(cloud: LocalCloud) -> None:
    fn = make_function(cloud, make_role(cloud))
    role = make_role(cloud, {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn, "Payload": {}},
                "End": True,
            }
        },
    }
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )
    done = _execute(cloud, arn["stateMachineArn"])
    assert done["status"] == "FAILED"
    assert "Neither the global service principal states.amazonaws.com, nor the regional one" in done["cause"]


def test_usage_per_function_from_the_decision_log(cloud: LocalCloud, bucket: str) -> None:
    role = make_role(
        cloud,
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject*"],
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
    )
    fn = make_function(cloud, role)
    run(
        cloud,
        fn,
        ("s3", "put_object", {"Bucket": bucket, "Key": "k", "Body": "x"}),
        ("s3", "delete_object", {"Bucket": bucket, "Key": "k"}),
    )
    usage = iam_usage(Path(cloud.state_dir) / "iam" / "decisions.jsonl", {fn: role})[fn]
    assert usage["used"] == ["s3:PutObject"]
    assert usage["refused"] == ["s3:DeleteObject"]
    assert "s3:GetObject" in usage["granted_unused"] and "s3:GetObjectTagging" in usage["granted_unused"]
    assert "s3:PutObject" not in usage["granted_unused"]
