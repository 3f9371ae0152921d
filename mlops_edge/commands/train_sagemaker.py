"""``mlops-edge train --sagemaker``: train.py as a SageMaker training job, submitted through the
SageMaker Python SDK's ModelTrainer in that SDK's own environment (``sagemaker_submit.py``), with
the deployed pipeline stack's bucket and role as defaults; the model is unpacked where ``--out`` says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import click

__all__ = [
    "METRIC_NAMES",
    "SDK_PYTHON_VAR",
    "SUBMIT_SCRIPT",
    "deployed_training_defaults",
    "pipeline_stack_name",
    "require_sdk_python",
    "sagemaker_training",
    "sdk_python",
    "train_on_sagemaker",
]

#: The ``#metric validation:<name>`` lines train.py prints (lambdas/core/configure.py METRIC_NAMES).
METRIC_NAMES = ("rmse", "mae", "r2", "accuracy", "f1", "logloss", "auc")
#: The submit step of ``train --sagemaker``; it runs in the SageMaker SDK's own environment.
SUBMIT_SCRIPT = Path(__file__).with_name("sagemaker_submit.py")
#: Where scripts/setup puts that environment's interpreter (beside the project's, under .venv).
SDK_PYTHON_VAR = "MLOPS_EDGE_SAGEMAKER_PYTHON"


def sagemaker_training(
    channels: dict[str, str],
    out_dir: Path,
    hps: dict[str, object],
    *,
    stack: str | None,
    bucket: str | None,
    role: str | None,
    instance_type: str,
) -> tuple[dict, dict[str, float], dict[str, Any]]:
    """``train --sagemaker``: the bucket and role (given, else the deployed stack's), then the job."""
    require_sdk_python()
    if not (bucket and role):
        deployed = deployed_training_defaults(stack or pipeline_stack_name())
        bucket, role = bucket or deployed.get("bucket"), role or deployed.get("role")
    if not role:
        raise click.UsageError(
            "no execution role: pass --role (or MLOPS_EDGE_SAGEMAKER_ROLE), or deploy the pipeline "
            "stack (`mlops-edge run --keep` locally, `cdk deploy` on AWS) whose role is the default"
        )
    spec = {"bucket": bucket, "role": role, "instance_type": instance_type, "hyperparameters": hps}
    return train_on_sagemaker(channels, out_dir, spec)


def pipeline_stack_name() -> str:
    from mlops_edge.environment.assembly import REPO_ROOT
    from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

    context = load_cdk_json_context(REPO_ROOT / "cdk.json")
    return f"{EdgeConfig.from_context(context.get).stack_prefix}Pipeline"


def deployed_training_defaults(stack: str) -> dict[str, str]:
    """The deployed pipeline stack's artifact bucket and SageMaker execution role (the same on AWS
    and on the local cloud, where `mlops-edge run` deploys that stack); {} when there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.aws import client

    cfn = client("cloudformation")
    try:
        (found,) = cfn.describe_stacks(StackName=stack)["Stacks"]
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    except (BotoCoreError, ClientError):
        return {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    roles = [
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::IAM::Role"
        and r["LogicalResourceId"].startswith("TrainingExecutionRole")
    ]
    defaults = {"bucket": outputs.get("ArtifactBucketName", ""), "role": roles[0] if len(roles) == 1 else ""}
    return {k: v for k, v in defaults.items() if v}


def sdk_python(environ: dict[str, str] | None = None) -> Path:
    """The SageMaker SDK environment's interpreter: ``$MLOPS_EDGE_SAGEMAKER_PYTHON`` or set-up's."""
    environ = dict(os.environ) if environ is None else environ
    configured = environ.get(SDK_PYTHON_VAR)
    return Path(configured) if configured else Path(sys.prefix) / "sagemaker-sdk" / "bin" / "python"


def require_sdk_python() -> Path:
    python = sdk_python()
    if not python.exists():
        raise click.ClickException(
            f"the SageMaker Python SDK's environment is not installed ({python}): run scripts/setup"
        )
    return python


def train_on_sagemaker(
    channels: dict[str, str], out_dir: Path, options: dict[str, Any]
) -> tuple[dict, dict[str, float], dict[str, Any]]:
    """Submit train.py through ModelTrainer in the SDK's environment, wait, unpack model.tar.gz.

    ``options``: ``bucket`` (or None), ``role``, ``instance_type``, ``hyperparameters``. Returns
    (training.json, the job's final metrics, the submit step's result).
    """
    from pipeline.config.function_env import Settings
    from pipeline.training import source_tarball

    python = require_sdk_python()
    for name, location in channels.items():
        if not location.startswith("s3://") and not Path(location).is_file():
            raise click.BadParameter(f"{name} data {location}: no such file (nor an s3:// prefix)")
    with tempfile.TemporaryDirectory(prefix="mlops-edge-submit-") as tmp:
        root = Path(tmp)
        (root / "sourcedir.tar.gz").write_bytes(source_tarball())
        spec = {
            **options,
            "prefix": f"{Settings().artifact_prefix}training/",
            "base_job_name": "mlops-edge-train",
            "max_runtime_s": 3600,
            "channels": {
                k: v if v.startswith("s3://") else str(Path(v).resolve()) for k, v in channels.items()
            },
            "sourcedir": str(root / "sourcedir.tar.gz"),
            "metric_names": list(METRIC_NAMES),
            "download_to": str(root / "model"),
            "poll_s": 2,
            "result": str(root / "result.json"),
        }
        (root / "spec.json").write_text(json.dumps(spec))
        # The SDK's own narration (job name, status, the job's log lines) goes to this terminal.
        proc = subprocess.run([str(python), str(SUBMIT_SCRIPT), str(root / "spec.json")], check=False)
        if not (root / "result.json").exists():
            raise click.ClickException(
                f"the SageMaker submit step failed (exit {proc.returncode}); see above"
            )
        job = json.loads((root / "result.json").read_text())
        if job["status"] == "NotSubmitted":
            raise click.ClickException(f"no training job was submitted: {job['error']}")
        if job["status"] != "Completed":
            raise click.ClickException(
                f"training job {job['job_name']} {job['status']}: {job.get('failure_reason') or job.get('error')}"
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        with tarfile.open(job["model_tar"]) as tar:
            tar.extractall(out_dir, filter="data")
    return json.loads((out_dir / "training.json").read_text()), job["metrics"], job
