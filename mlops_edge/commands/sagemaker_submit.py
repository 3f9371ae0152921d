"""The submit step of `mlops-edge train --sagemaker`: train.py through the SageMaker SDK's ModelTrainer.

Runs in the SDK's own environment (``.venv/sagemaker-sdk``, made by scripts/setup; sagemaker-train
and its MLflow 3 stay out of the project's), as ``python sagemaker_submit.py SPEC.json``: it imports
nothing of the project. ``mlops_edge/commands/train_sagemaker.py`` writes the spec, runs this,
and reads the result file it names. Every AWS call goes through the SDK's session, so
``AWS_ENDPOINT_URL`` (the local cloud) or real credentials decide where the job runs.

The job is the XGBoost 1.7-1 framework container's script mode, as the pipeline's training step
submits it (docs/contracts.md §7): ``sagemaker_program`` and ``sagemaker_submit_directory``
hyperparameters naming ``train.py`` in a ``sourcedir.tar.gz``, channels ``train`` and
``validation`` from S3, the output under the artifact bucket's training prefix, metrics from the
``#metric validation:<name>=<value>`` lines. (ModelTrainer's ``SourceCode`` would replace the
image's entry point with the SDK's own ``/opt/ml/input/data/sm_drivers/sm_train.sh`` instead.)

Spec keys: ``region`` (optional; else the session's), ``bucket`` (optional; else the SDK's default
bucket), ``prefix``, ``role`` (name or ARN), ``base_job_name``, ``instance_type``,
``max_runtime_s``, ``hyperparameters``, ``channels`` (name -> local file or ``s3://`` prefix),
``sourcedir`` (local ``sourcedir.tar.gz``), ``metric_names``, ``download_to`` (directory),
``poll_s``, ``result`` (where the result JSON goes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

FRAMEWORK, FRAMEWORK_VERSION = "xgboost", "1.7-1"
#: The SDK's defaults config, given to the session instead of any file: no telemetry request.
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def endpoint_session(region: str | None = None) -> Any:
    """A boto3 session whose clients honour ``AWS_ENDPOINT_URL`` for STS too.

    The SDK creates its STS clients with ``endpoint_url=sts_regional_endpoint(region)`` (the
    public ``https://sts.<region>.amazonaws.com``), which wins over ``AWS_ENDPOINT_URL``; with a
    configured endpoint (the local cloud) that pinned URL is dropped, so STS goes where every
    other client goes. Without one nothing changes.
    """
    import boto3

    class EndpointSession(boto3.Session):
        def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:
            configured = os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
            pinned = str(kwargs.get("endpoint_url") or "")
            if service_name == "sts" and configured and pinned.startswith("https://sts."):
                kwargs.pop("endpoint_url")
            return super().client(service_name, *args, **kwargs)

    return EndpointSession(region_name=region) if region else EndpointSession()


def sdk_switches(environ: dict[str, str]) -> dict[str, str]:
    """The SDK's environment switches this submit sets (a value the user set is kept).

    ``SAGEMAKER_VALIDATE_ROLE=false``: ModelTrainer checks the execution role client-side with
    ``iam:SimulatePrincipalPolicy`` on a fixed list of actions, and refuses a role that lacks one.
    That list holds the VPC network-interface actions (``ec2:CreateNetworkInterface``, ...) and an
    unconditioned ``cloudwatch:PutMetricData``, which the pipeline stack's least-privilege role
    does not have (its jobs run without a VPC, and its metrics only in SageMaker's namespace), and
    the local cloud does not serve SimulatePrincipalPolicy at all (moto: not implemented, HTTP 500;
    the SDK treats only AccessDenied as "cannot tell"). The role is still resolved (``iam:GetRole``:
    an unknown role fails here), and SageMaker checks it when it creates the job.
    """
    return {} if "SAGEMAKER_VALIDATE_ROLE" in environ else {"SAGEMAKER_VALIDATE_ROLE": "false"}


def _upload(session: Any, bucket: str, key_prefix: str, path: str) -> str:
    """Upload a local file through the SDK's session; returns its ``s3://`` URI."""
    return str(session.upload_data(path, bucket=bucket, key_prefix=key_prefix))


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def submit(spec: dict[str, Any]) -> dict[str, Any]:
    """Create the training job with ModelTrainer, wait for it, download model.tar.gz."""
    from sagemaker.core import image_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.shapes import MetricDefinition
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train import ModelTrainer

    session = Session(boto_session=endpoint_session(spec.get("region")), sagemaker_config=SDK_CONFIG)
    region = session.boto_region_name
    bucket = spec.get("bucket") or session.default_bucket()  # sts GetCallerIdentity, s3 CreateBucket
    prefix = spec["prefix"]
    image = image_uris.retrieve(FRAMEWORK, region, version=FRAMEWORK_VERSION, image_scope="training")
    # Content-addressed, like the pipeline's: the same train.py is the same object.
    source = _upload(session, bucket, f"{prefix}source/{_digest(spec['sourcedir'])}", spec["sourcedir"])
    channels = []
    for name, location in spec["channels"].items():
        if not location.startswith("s3://"):
            location = _upload(session, bucket, f"datasets/sagemaker/{_digest(location)}/{name}", location)
        channels.append(InputData(channel_name=name, data_source=location, content_type="text/csv"))
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=spec["role"],  # name or ARN: the SDK resolves and validates it (iam GetRole)
        training_image=image,
        base_job_name=spec["base_job_name"],
        compute=Compute(instance_type=spec["instance_type"], instance_count=1, volume_size_in_gb=30),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=int(spec["max_runtime_s"])),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{bucket}/{prefix}"),
        hyperparameters={
            **{key: str(value) for key, value in spec["hyperparameters"].items()},
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": source,
        },
        input_data_config=channels,
    ).with_metric_definitions(
        [
            MetricDefinition(name=f"validation:{m}", regex=f"#metric validation:{m}=([-0-9.eE+]+)")
            for m in spec["metric_names"]
        ]
    )
    trainer.train(wait=False, logs=False)
    job = trainer._latest_training_job  # the SDK's own handle (ModelTrainer's documented example)
    result: dict[str, Any] = {"job_name": job.training_job_name, "image": image, "bucket": bucket}
    try:
        job.wait(poll=int(spec.get("poll_s", 5)), logs=True)  # DescribeTrainingJob, CloudWatch Logs
    except Exception as exc:  # FailedStatusError, TimeoutExceededError: the job's own words below
        result["error"] = f"{type(exc).__name__}: {exc}"
    job.refresh()
    result.update(status=job.training_job_status, failure_reason=_plain(job.failure_reason))
    metrics = _plain(job.final_metric_data_list) or []
    result["metrics"] = {m.metric_name: float(m.value) for m in metrics}
    if job.training_job_status == "Completed":
        artifact = job.model_artifacts.s3_model_artifacts
        result["model_artifact"] = artifact
        artifact_bucket, _, key = artifact[len("s3://") :].partition("/")
        session.download_data(spec["download_to"], artifact_bucket, key_prefix=key)
        result["model_tar"] = str(Path(spec["download_to"]) / Path(key).name)
    return result


def _plain(value: Any) -> Any:
    """None for the SDK's ``Unassigned`` placeholder of a field the service did not return."""
    return None if type(value).__name__ == "Unassigned" else value


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: sagemaker_submit.py SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    os.environ.update(sdk_switches(dict(os.environ)))
    # The SDK's narration (job name, status, the job's CloudWatch log lines) on stderr, plainly.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("sagemaker.core").setLevel(logging.INFO)
    started = time.monotonic()
    try:
        result = submit(spec)
    except Exception as exc:  # before or while submitting: no job, or none to report on
        logging.getLogger(__name__).debug("submit failed", exc_info=True)
        result = {"status": "NotSubmitted", "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.monotonic() - started, 1)
    Path(spec["result"]).write_text(json.dumps(result, indent=2))
    return 0 if result["status"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
