"""SageMaker training jobs really train, under the script-mode contract."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest

from tests.integration.local_cloud.conftest import wait_until
from tests.integration.local_cloud.training_support import training_job_request, upload_inputs

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/sagemaker"


def _done(sm, name):  # type: ignore[no-untyped-def]
    job = sm.describe_training_job(TrainingJobName=name)
    return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None


def test_training_job_trains_and_uploads_model(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"train-{uuid.uuid4().hex[:8]}"
    kind = upload_inputs(s3, bucket)
    name = f"job-{uuid.uuid4().hex[:8]}"
    arn = sm.create_training_job(**training_job_request(name, bucket, ROLE))["TrainingJobArn"]
    assert arn.endswith(f"training-job/{name}")
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    job = wait_until(lambda: _done(sm, name), timeout=120, interval=0.2)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/output/{name}/output/model.tar.gz"
    [metric] = job["FinalMetricDataList"]
    assert metric["MetricName"] == "validation:rmse" and metric["Value"] >= 0
    body = s3.get_object(Bucket=bucket, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = tar.getnames()
    assert ("xgboost-model.json" in names) if kind == "real" else ("model.json" in names)
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_training_job(**training_job_request(name, bucket, ROLE))


def test_failing_script_reports_failure_reason(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"train-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket, real=False)
    name = f"bad-{uuid.uuid4().hex[:8]}"
    sm.create_training_job(**training_job_request(name, bucket, ROLE, target="no_such_column", fail="1"))
    job = wait_until(lambda: _done(sm, name), timeout=120, interval=0.2)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "InvalidDataset: asked to fail"


def test_missing_channel_fails_and_unknown_job_is_validation_error(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"train-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket, real=False)
    request = training_job_request(f"nodata-{uuid.uuid4().hex[:8]}", bucket, ROLE)
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{bucket}/nothing/"
    sm.create_training_job(**request)
    job = wait_until(lambda: _done(sm, request["TrainingJobName"]), timeout=60, interval=0.2)
    assert job["TrainingJobStatus"] == "Failed" and "No S3 objects" in job["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.describe_training_job(TrainingJobName="never-created")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_stop_training_job(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3, sm = local_cloud.client("s3"), local_cloud.client("sagemaker")
    bucket = f"train-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket)
    slow = b"import time\ntime.sleep(60)\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(slow)
        tar.addfile(info, io.BytesIO(slow))
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=buf.getvalue())
    name = f"stop-{uuid.uuid4().hex[:8]}"
    sm.create_training_job(**training_job_request(name, bucket, ROLE))
    # bounds, not paces: a loaded machine took more than 30 s to start the image's interpreter
    wait_until(
        lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training", timeout=90
    )
    sm.stop_training_job(TrainingJobName=name)
    job = wait_until(lambda: _done(sm, name), timeout=50, interval=0.1)
    assert job["TrainingJobStatus"] == "Stopped"


def test_model_registry_falls_through_to_moto(local_cloud) -> None:  # type: ignore[no-untyped-def]
    sm = local_cloud.client("sagemaker")
    group = f"models-{uuid.uuid4().hex[:8]}"
    sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "xgboost:1.7-1", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    [summary] = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert summary["ModelApprovalStatus"] == "Approved" and summary["ModelPackageVersion"] == 1
