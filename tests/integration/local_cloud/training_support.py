"""Test data for training jobs: the project's train.py when present, else a tiny script-mode one."""

from __future__ import annotations

import io
import tarfile

TINY_TRAIN = b"""
import json, os, sys
hps = json.loads(os.environ["SM_HPS"])
if hps.get("fail"):
    os.makedirs(os.environ["SM_OUTPUT_DIR"], exist_ok=True)
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write("InvalidDataset: asked to fail")
    sys.exit(1)
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv")).read().splitlines()[1:]
mean = sum(float(r.split(",")[-1]) for r in rows) / len(rows)
json.dump({"mean": mean}, open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w"))
print(f"#metric validation:rmse={mean / 10}")
"""


def source_tarball(real: bool = True) -> tuple[bytes, str]:
    """(sourcedir.tar.gz, kind): the project's train.py when present and wanted, else a tiny one."""
    try:
        if not real:
            raise ImportError("tiny script requested")
        from pipeline.training import source_tarball as project_tarball

        return project_tarball(), "real"
    except ImportError:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("train.py")
            info.size = len(TINY_TRAIN)
            tar.addfile(info, io.BytesIO(TINY_TRAIN))
        return buf.getvalue(), "tiny"


def regression_csv(rows: int = 200) -> bytes:
    lines = ["x1,x2,target"]
    for i in range(rows):
        x1, x2 = i % 17, (i * 7) % 13
        lines.append(f"{x1},{x2},{3 * x1 - 2 * x2 + 5}")
    return ("\n".join(lines) + "\n").encode()


def training_job_request(name: str, bucket: str, role_arn: str, **hps: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": "validation:rmse", "Regex": "#metric validation:rmse=([-0-9.eE+]+)"}
            ],
        },
        "RoleArn": role_arn,
        "HyperParameters": {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"s3://{bucket}/code/sourcedir.tar.gz",
            "target": "target",
            "task": "regression",
            "num_round": "20",
            **hps,
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train/"}
                },
                "ContentType": "text/csv",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def upload_inputs(s3, bucket: str, *, real: bool = True) -> str:  # type: ignore[no-untyped-def]
    """Bucket with sourcedir.tar.gz and a train channel; ``real=False`` keeps tests fast."""
    s3.create_bucket(Bucket=bucket)
    tarball, kind = source_tarball(real)
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=tarball)
    s3.put_object(Bucket=bucket, Key="data/train/train.csv", Body=regression_csv())
    return kind
