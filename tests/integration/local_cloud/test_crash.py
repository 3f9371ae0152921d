"""Issue 13 item 2: a SIGKILL of the endpoint loses nothing it acknowledged.

Each test starts a real endpoint on an ephemeral port, makes calls, SIGKILLs it (and its
mosquitto) by PID right after the last acknowledged call, starts a new endpoint on the same state
dir and checks that everything acknowledged is there, with the same bytes and versions.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import uuid
import zipfile
from pathlib import Path

import botocore.exceptions
import pytest

from local_cloud import LocalCloud
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {
                "Service": ["lambda.amazonaws.com", "states.amazonaws.com", "sagemaker.amazonaws.com"]
            },
            "Action": "sts:AssumeRole",
        }
    ],
}


def crash(cloud: LocalCloud) -> None:
    """SIGKILL the endpoint and its mosquitto, by PID: no clean stop, nothing saved at exit."""
    proc = cloud.process
    assert proc is not None and proc.poll() is None, "the endpoint died before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    mosquitto = cloud.info.get("mosquitto_pid")
    if mosquitto:
        with contextlib.suppress(ProcessLookupError):
            os.kill(mosquitto, signal.SIGKILL)
    cloud.process = None


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("h.py", source)
    return buf.getvalue()


def test_s3_objects_survive_a_kill_with_their_bytes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    big = os.urandom(3 * 1024 * 1024)  # over moto's in-memory buffer: spooled to a file
    with LocalCloud(state) as cloud:
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="crash-bucket")
        s3.put_object(Bucket="crash-bucket", Key="small.txt", Body=b"v1")
        s3.put_object(Bucket="crash-bucket", Key="small.txt", Body=b"v2")  # overwritten
        s3.put_object(Bucket="crash-bucket", Key="gone", Body=b"x")
        s3.delete_object(Bucket="crash-bucket", Key="gone")
        s3.put_object(Bucket="crash-bucket", Key="models/big.bin", Body=big, Metadata={"k": "v"})
        crash(cloud)
    with LocalCloud(state) as cloud:
        s3 = cloud.client("s3")
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="crash-bucket")["Contents"])
        assert keys == ["models/big.bin", "small.txt"]
        assert s3.get_object(Bucket="crash-bucket", Key="small.txt")["Body"].read() == b"v2"
        got = s3.get_object(Bucket="crash-bucket", Key="models/big.bin")
        assert got["Body"].read() == big and got["Metadata"] == {"k": "v"}
        # bodies are stored once, by content; the overwritten and deleted ones were collected
        blobs = [p for p in (state / "moto" / "s3-objects").glob("*/*")]
        assert len(blobs) == 2
        s3.put_object(Bucket="crash-bucket", Key="after", Body=b"a")
        crash(cloud)
    with LocalCloud(state) as cloud:
        assert cloud.client("s3").get_object(Bucket="crash-bucket", Key="after")["Body"].read() == b"a"


def test_model_registry_survives_a_kill_and_keeps_counting(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with LocalCloud(state) as cloud:
        sm = cloud.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="crash-group")
        for _ in range(2):
            sm.create_model_package(
                ModelPackageGroupName="crash-group",
                ModelApprovalStatus="PendingManualApproval",
                InferenceSpecification={
                    "Containers": [{"Image": "x", "ModelDataUrl": "s3://b/model.tar.gz"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )
        crash(cloud)
    with LocalCloud(state) as cloud:
        sm = cloud.client("sagemaker")
        listed = sm.list_model_packages(ModelPackageGroupName="crash-group")["ModelPackageSummaryList"]
        assert sorted(p["ModelPackageVersion"] for p in listed) == [1, 2]
        arn = sm.create_model_package(
            ModelPackageGroupName="crash-group",
            InferenceSpecification={
                "Containers": [{"Image": "x"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        assert arn.endswith("/crash-group/3")  # never version 2 again


def test_component_versions_survive_a_kill(tmp_path: Path) -> None:
    state = tmp_path / "state"
    name = f"com.test.Crash{uuid.uuid4().hex[:6]}"
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": "1.0.2",
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "echo one"}}],
    }
    with LocalCloud(state) as cloud:
        gg = cloud.client("greengrassv2")
        arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
        crash(cloud)
    with LocalCloud(state) as cloud:
        gg = cloud.client("greengrassv2")
        wait_until(
            lambda: gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE", timeout=10
        )
        kept = json.loads(gg.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"])
        assert kept["Manifests"] == recipe["Manifests"]
        changed = {**recipe, "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "echo two"}}]}
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            gg.create_component_version(inlineRecipe=json.dumps(changed).encode())
        assert refused.value.response["Error"]["Code"] == "ConflictException"


def test_every_service_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    """One write per service the endpoint serves, then a kill right after the last answer."""
    state = tmp_path / "state"
    with LocalCloud(state) as cloud:
        role = cloud.client("iam").create_role(
            RoleName="crash-role", AssumeRolePolicyDocument=json.dumps(TRUST)
        )
        role_arn = role["Role"]["Arn"]
        cloud.client("iam").put_role_policy(
            RoleName="crash-role",
            PolicyName="inline",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        cloud.client("lambda").create_function(
            FunctionName="crash-fn",
            Runtime="python3.11",
            Role=role_arn,
            Handler="h.handler",
            Code={"ZipFile": _zip("def handler(e, c):\n    return 1\n")},
        )
        cloud.client("ssm").put_parameter(Name="/crash/p", Value="pv", Type="String")
        cloud.client("secretsmanager").create_secret(Name="crash-secret", SecretString="sv")
        cloud.client("events").put_rule(Name="crash-rule", EventPattern=json.dumps({"source": ["x"]}))
        cloud.client("logs").create_log_group(logGroupName="/crash/lg")
        cloud.client("ecr").create_repository(repositoryName="crash-repo")
        cloud.client("iot").create_thing(thingName="crash-thing")
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="crash-sm",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn=role_arn,
        )["stateMachineArn"]
        crash(cloud)
    with LocalCloud(state) as cloud:
        iam = cloud.client("iam")
        assert iam.get_role(RoleName="crash-role")["Role"]["Arn"] == role_arn
        assert iam.list_role_policies(RoleName="crash-role")["PolicyNames"] == ["inline"]
        assert (
            cloud.client("lambda").get_function(FunctionName="crash-fn")["Configuration"]["Role"] == role_arn
        )
        assert cloud.client("ssm").get_parameter(Name="/crash/p")["Parameter"]["Value"] == "pv"
        assert (
            cloud.client("secretsmanager").get_secret_value(SecretId="crash-secret")["SecretString"] == "sv"
        )
        assert cloud.client("events").describe_rule(Name="crash-rule")["Name"] == "crash-rule"
        groups = cloud.client("logs").describe_log_groups(logGroupNamePrefix="/crash/")["logGroups"]
        assert [g["logGroupName"] for g in groups] == ["/crash/lg"]
        repos = cloud.client("ecr").describe_repositories()["repositories"]
        assert [r["repositoryName"] for r in repos] == ["crash-repo"]
        assert cloud.client("iot").describe_thing(thingName="crash-thing")["thingName"] == "crash-thing"
        assert (
            cloud.client("stepfunctions").describe_state_machine(stateMachineArn=machine)["name"]
            == "crash-sm"
        )


def test_kill_during_a_step_functions_execution(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with LocalCloud(state) as cloud:
        role_arn = cloud.client("iam").create_role(
            RoleName="sfn", AssumeRolePolicyDocument=json.dumps(TRUST)
        )["Role"]["Arn"]
        sfn = cloud.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="crash-wait",
            definition=json.dumps(
                {
                    "StartAt": "W",
                    "States": {
                        "W": {"Type": "Wait", "Seconds": 60, "Next": "P"},
                        "P": {"Type": "Pass", "End": True},
                    },
                }
            ),
            roleArn=role_arn,
        )["stateMachineArn"]
        done = sfn.start_execution(
            stateMachineArn=sfn.create_state_machine(
                name="crash-quick",
                definition=json.dumps(
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 7, "End": True}}}
                ),
                roleArn=role_arn,
            )["stateMachineArn"],
            name="quick-1",
        )["executionArn"]
        wait_until(lambda: sfn.describe_execution(executionArn=done)["status"] == "SUCCEEDED", timeout=10)
        running = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"a": 1}')["executionArn"]
        wait_until(lambda: sfn.describe_execution(executionArn=running)["status"] == "RUNNING", timeout=10)
        crash(cloud)
    with LocalCloud(state) as cloud:
        sfn = cloud.client("stepfunctions")
        described = sfn.describe_execution(executionArn=running)
        assert json.loads(described["input"]) == {"a": 1}
        assert described["status"] == "ABORTED"  # no worker survives a crash; never RUNNING for ever
        quick = sfn.describe_execution(executionArn=done)
        assert quick["status"] == "SUCCEEDED" and json.loads(quick["output"]) == 7
        again = sfn.start_execution(stateMachineArn=machine, name="run-2")["executionArn"]
        assert sfn.describe_execution(executionArn=again)["status"] == "RUNNING"


def test_a_kill_between_temp_write_and_rename_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoint kills itself after writing s3.pickle's temporary file for the third time
    (CreateBucket, the first PutObject, then the second PutObject), before the rename: the
    second PutObject is never answered, and the restart has exactly the first two."""
    state = tmp_path / "state"
    monkeypatch.setenv("LOCAL_CLOUD_CRASH_BEFORE_RENAME", "s3.pickle:3")
    cloud = LocalCloud(state).start()
    try:
        s3 = cloud.client("s3")
        s3.create_bucket(Bucket="torn")
        s3.put_object(Bucket="torn", Key="first", Body=b"1")
        with pytest.raises(botocore.exceptions.BotoCoreError):  # connection closed: no answer
            cloud.client("s3").put_object(Bucket="torn", Key="second", Body=b"2")
        assert cloud.process is not None
        assert cloud.process.wait(timeout=10) == -signal.SIGKILL
        assert list((state / "moto").glob(".s3.pickle.*.tmp")), "the temporary file was written"
        mosquitto = cloud.info.get("mosquitto_pid")
        if mosquitto:
            with contextlib.suppress(ProcessLookupError):
                os.kill(mosquitto, signal.SIGKILL)
        cloud.process = None
    finally:
        cloud.stop()
    monkeypatch.delenv("LOCAL_CLOUD_CRASH_BEFORE_RENAME")
    with LocalCloud(state) as cloud:
        s3 = cloud.client("s3")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="torn")["Contents"]] == ["first"]
        assert s3.get_object(Bucket="torn", Key="first")["Body"].read() == b"1"
        assert not list((state / "moto").glob(".*.tmp")), "the stale temporary file is removed"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "mutating"),
    [
        ("PUT", "/bucket/key", {}, b"x", True),  # S3 PutObject
        ("GET", "/bucket/key", {}, b"", False),
        ("HEAD", "/bucket", {}, b"", False),
        ("POST", "/bucket?delete", {}, b"<Delete/>", True),  # S3 DeleteObjects
        ("POST", "/", {"X-Amz-Target": "SageMaker.CreateModelPackage"}, b"{}", True),
        ("POST", "/", {"X-Amz-Target": "SageMaker.ListModelPackages"}, b"{}", False),
        ("POST", "/", {"X-Amz-Target": "AWSStepFunctions.DescribeExecution"}, b"{}", False),
        ("POST", "/", {"X-Amz-Target": "AWSStepFunctions.StartExecution"}, b"{}", True),
        (
            "POST",
            "/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Action=GetRole&RoleName=r",
            False,
        ),
        (
            "POST",
            "/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Action=CreateRole&RoleName=r",
            True,
        ),
        ("POST", "/2015-03-31/functions/f/invocations", {}, b"{}", False),  # Lambda Invoke
        ("POST", "/2015-03-31/functions", {}, b"{}", True),  # Lambda CreateFunction
        ("POST", "/greengrass/v2/createComponentVersion", {}, b"{}", True),
    ],
)
def test_what_counts_as_a_mutation(
    method: str, path: str, headers: dict[str, str], body: bytes, mutating: bool
) -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from local_cloud.persistence import is_mutating

    request = Request(EnvironBuilder(path=path, method=method, headers=headers, data=body).get_environ())
    assert is_mutating(request) is mutating


def test_signing_service_from_the_credential_scope() -> None:
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from local_cloud.persistence import signing_service

    auth = "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/states/aws4_request, SignedHeaders=host, Signature=x"
    signed = Request(EnvironBuilder(path="/", headers={"Authorization": auth}).get_environ())
    presigned = Request(
        EnvironBuilder(
            path="/b/k", query_string="X-Amz-Credential=AKID%2F20261127%2Fus-east-1%2Fs3%2Faws4_request"
        ).get_environ()
    )
    assert signing_service(signed) == "states" and signing_service(presigned) == "s3"
    assert signing_service(Request(EnvironBuilder(path="/_local_cloud/devices").get_environ())) == ""
