"""Real clients against the local cloud: the plain AWS CLI, and the SageMaker Python SDK's ModelTrainer.

``mlops-edge train --sagemaker`` runs its submit step in the SDK's own environment
(``.venv/sagemaker-sdk``, made by scripts/setup), which creates a real training job on the local
cloud: the job runs train.py, and the command downloads and unpacks its model.tar.gz. Each SDK run
costs ~20 s (the SDK's import is ~6 s of it), so there are two: one that trains, one that fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_cloud.training_support import regression_csv

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
ROLE = "mlops-edge-sagemaker"
US_EAST_1_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _env(local_cloud: Any, tmp_path: Path, *, endpoint: bool = True) -> dict[str, str]:
    """The machine's environment pointed at the local cloud, with no ~/.aws files in play."""
    env = {**os.environ, **local_cloud.env()}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws-config")
    if not endpoint:
        env.pop("AWS_ENDPOINT_URL")
    return env


def _aws(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run(
        [str(BIN / "aws"), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.fixture(scope="module")
def sagemaker_role(local_cloud: Any) -> str:
    iam = local_cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        return str(iam.get_role(RoleName=ROLE)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def _train(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mlops-edge"), "train", "--sagemaker", "--num-round", "15", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_aws_cli_reaches_the_local_endpoint(local_cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3 = local_cloud.client("s3")
    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="datasets/train.csv", Body=b"x,target\n1,2\n")
    # --endpoint-url on the command line, no AWS_ENDPOINT_URL in the environment.
    bare = _env(local_cloud, tmp_path, endpoint=False)
    machines = _aws(bare, "--endpoint-url", local_cloud.endpoint_url, "stepfunctions", "list-state-machines")
    assert isinstance(machines["stateMachines"], list)
    # AWS_ENDPOINT_URL alone, as `eval "$(mlops-edge local env)"` leaves a shell.
    env = _env(local_cloud, tmp_path)
    assert _aws(env, "sts", "get-caller-identity")["Account"] == "123456789012"
    assert isinstance(_aws(env, "greengrassv2", "list-core-devices")["coreDevices"], list)
    listing = subprocess.run(
        [str(BIN / "aws"), "s3", "ls", f"s3://{bucket}/datasets/"], env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0 and "train.csv" in listing.stdout, listing.stderr
    listed = subprocess.run([str(BIN / "aws"), "s3", "ls"], env=env, capture_output=True, text=True)
    assert bucket in listed.stdout


def _pipeline_like_stack(local_cloud: Any, name: str) -> tuple[str, str]:
    """A stack shaped like the pipeline's where `train --sagemaker` looks: the artifact bucket's
    output and the SageMaker execution role. Returns (bucket, role ARN)."""
    cfn, iam = local_cloud.client("cloudformation"), local_cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    template = {
        "Resources": {
            "Artifacts": {"Type": "AWS::S3::Bucket"},
            "TrainingExecutionRole0CBEB7FB": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": trust},
            },
        },
        "Outputs": {"ArtifactBucketName": {"Value": {"Ref": "Artifacts"}}},
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    bucket = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "ArtifactBucketName")
    role = cfn.describe_stack_resource(StackName=name, LogicalResourceId="TrainingExecutionRole0CBEB7FB")
    role_name = role["StackResourceDetail"]["PhysicalResourceId"]
    return bucket, str(iam.get_role(RoleName=role_name)["Role"]["Arn"])


def test_train_sagemaker_runs_a_job_through_model_trainer(local_cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    stack = f"Pipeline{uuid.uuid4().hex[:8]}"
    bucket, role_arn = _pipeline_like_stack(local_cloud, stack)
    (tmp_path / "train.csv").write_bytes(regression_csv(200))
    s3.put_object(Bucket=bucket, Key="datasets/v/validation.csv", Body=regression_csv(60))
    out = tmp_path / "model"
    env = _env(local_cloud, tmp_path)
    env.pop("MLOPS_EDGE_BUCKET", None)
    # Bucket and role from the deployed stack; a local train file (the SDK's session uploads it)
    # and an s3:// validation prefix.
    proc = _train(
        env,
        *("--stack", stack, "--train", str(tmp_path / "train.csv")),
        *("--validation", f"s3://{bucket}/datasets/v/", "--out", str(out)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["training.json", "xgboost-model.json"]
    info = json.loads((out / "training.json").read_text())
    assert info["task"] == "regression" and info["train_rows"] == 200 and info["validation_rows"] == 60
    assert "validation:rmse = " in proc.stdout and "validation:r2 = " in proc.stdout
    (name,) = [w.rstrip(":") for w in proc.stdout.split() if w.startswith("mlops-edge-train-")]
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    spec = job["AlgorithmSpecification"]
    assert spec["TrainingImage"] == US_EAST_1_IMAGE  # image_uris.retrieve for the endpoint's region
    assert job["RoleArn"] == role_arn  # the stack's role name, resolved by the SDK (iam GetRole)
    assert job["HyperParameters"]["sagemaker_program"] == "train.py"
    assert job["HyperParameters"]["sagemaker_submit_directory"].startswith(
        f"s3://{bucket}/artifacts/training/source/"
    )
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]} == {
        "train": f"s3://{bucket}/datasets/sagemaker/{_uploaded_digest(tmp_path / 'train.csv')}/train/train.csv",
        "validation": f"s3://{bucket}/datasets/v/",
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{bucket}/artifacts/training/"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{bucket}/artifacts/training/{name}/output/model.tar.gz"
    )
    assert {m["MetricName"] for m in job["FinalMetricDataList"]} == {
        "validation:rmse",
        "validation:mae",
        "validation:r2",
    }
    # The SDK followed the job's CloudWatch log stream while it waited.
    assert "#metric validation:rmse=" in proc.stderr and "Completed" in proc.stderr
    # The AWS CLI sees the same job.
    described = _aws(
        _env(local_cloud, tmp_path), "sagemaker", "describe-training-job", "--training-job-name", name
    )
    assert described["TrainingJobStatus"] == "Completed"


def _uploaded_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_train_sagemaker_failure_names_the_reason(local_cloud, sagemaker_role, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3 = local_cloud.client("s3")
    data = f"data-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=data)
    s3.put_object(Bucket=data, Key="train/train.csv", Body=regression_csv(50))
    env = _env(local_cloud, tmp_path)
    env.pop("MLOPS_EDGE_BUCKET", None)
    # No bucket and no deployed stack: the SDK's default bucket (sts GetCallerIdentity, s3
    # CreateBucket) takes the output. The stack is named, because another module may have deployed
    # the pipeline stack into this session's cloud, and its bucket would be the default then.
    proc = _train(
        env,
        *("--role", ROLE, "--train", f"s3://{data}/train/", "--stack", f"none-{uuid.uuid4().hex[:8]}"),
        *("--target", "no_such_column", "--out", str(tmp_path / "m")),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Failed" in proc.stderr and "no_such_column" in proc.stderr, proc.stderr
    assert not (tmp_path / "m").exists()
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "sagemaker-us-east-1-123456789012" in buckets
