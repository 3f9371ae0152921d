"""What the cloud side of monitoring needs about a published model, written by PublishComponents.

Why at publish time: it is the first step that knows both the model component version devices
will report in their windows (``1.0.<registry version>``) and the registered, digest-checked
baseline. The monitoring function judges windows of ``model_version`` against
``<state_prefix>monitoring/<model_version>/baseline/``; a drift retraining starts from
``context.json``: the source execution's input, "with the same dataset settings" (docs/monitoring.md).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, put_immutable, transient_errors, write_object

#: Optional model files copied to ``monitoring/<model_version>/`` (same relative names).
BASELINE_FILES = ("baseline/statistics.json", "baseline/constraints.json")
#: Keys of the training job's hyperparameters that are the pipeline's, not the user's input.
_NOT_INPUT = {"sagemaker_program", "sagemaker_submit_directory", "target", "task"}


def monitoring_prefix(config: dict[str, Any], model_version: str) -> str:
    """``<state_prefix>monitoring/<model_version>/`` (a key prefix in ``config["bucket"]``)."""
    return f"{config['state_prefix']}monitoring/{model_version}/"


def input_hyperparameters(config: dict[str, Any]) -> dict[str, Any] | None:
    """The execution input's hyperparameters, typed as the input schema has them.

    Configure keeps them only as the training job's strings (SageMaker's form); a retraining input
    must pass the schema again, so integers and numbers are given back their JSON types.
    """
    if isinstance(config.get("hyperparameters"), dict):
        return dict(config["hyperparameters"])
    raw = (config.get("training") or {}).get("hyperparameters")
    if not raw:
        return None  # deploy-only: no training in this execution
    from pipeline.config import schema

    props = schema()["properties"]["hyperparameters"]["properties"]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _NOT_INPUT or key not in props:
            continue
        try:
            out[key] = int(value) if props[key].get("type") == "integer" else float(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def context_document(config: dict[str, Any], registry: dict[str, Any], model_version: str) -> dict[str, Any]:
    """``context.json``: the shared interface's fields, what a retraining starts from.

    ``input`` is the execution input Configure validated (None from a config made before it kept
    one): a retraining reuses it whole, so nothing the source run set falls back to a default.
    """
    return {
        "input": config.get("input"),
        "model_version": model_version,
        "model_package_arn": registry.get("model_package_arn"),
        "model_name": config["components"]["model_name"],
        "dataset": config.get("dataset"),
        "hyperparameters": input_hyperparameters(config),
        "monitoring": config.get("monitoring") or {},
        "source_execution": config.get("execution"),
    }


def _exists(s3: Any, bucket: str, key: str) -> bool:
    with transient_errors(f"s3 head s3://{bucket}/{key}"):
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
    return True


def write_monitoring_files(
    s3: Any,
    config: dict[str, Any],
    registry: dict[str, Any],
    model_version: str,
    files: dict[str, bytes],
) -> dict[str, str]:
    """Copy the baseline and write ``context.json`` under the version's monitoring prefix.

    The baseline files are immutable (the registered bytes of that model version). The context is
    rewritten by the execution that trained the model; a deploy-only execution (a registered
    package, no training) writes it only when none exists, since its dataset settings are
    defaults, not what the model was trained on. Returns name -> URI of what is there.
    """
    bucket, prefix = config["bucket"], monitoring_prefix(config, model_version)
    written: dict[str, str] = {}
    for name in BASELINE_FILES:
        if name in files:
            put_immutable(s3, bucket, prefix + name, files[name], content_type="application/json")
            written[name] = f"s3://{bucket}/{prefix}{name}"
    key = prefix + "context.json"
    uri = f"s3://{bucket}/{key}"
    if not config.get("model_package_arn") or not _exists(s3, bucket, key):
        document = context_document(config, registry, model_version)
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        write_object(s3, uri, body, content_type="application/json")
    written["context.json"] = uri
    return written
