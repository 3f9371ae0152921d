"""Configure: execution input -> the normalized ``config`` every later state reads.

Why a Lambda and not a Pass state: defaults depend on the deployment (bucket, registry group,
thing group come from the environment), input errors must fail early with a message a person can
act on, and the training request is assembled here once so the ASL only references it.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from lambdas.core.aws import put_immutable, split_s3_uri
from lambdas.core.exceptions import ConfigurationError
from pipeline.config import schema as input_schema
from pipeline.config.function_env import Settings
from pipeline.config.polling import derived_max_polls
from pipeline.config.rollout import normalize as normalize_rollout
from pipeline.config.validation import fill_defaults, validate

#: Metrics train.py prints as ``#metric validation:<name>=<value>`` (contracts §7).
METRIC_NAMES = ("rmse", "mae", "r2", "accuracy", "f1", "logloss", "auc")
POLL_LOOPS = ("training", "components", "deployment")


def job_name(execution: str, prefix: str = "mlops") -> str:
    """A valid, unique-per-execution SageMaker job name (<= 63 chars, [a-zA-Z0-9-])."""
    clean = re.sub(r"[^a-zA-Z0-9-]+", "-", execution).strip("-") or "run"
    digest = hashlib.sha256(execution.encode()).hexdigest()[:8]
    return f"{prefix}-{clean[: 63 - len(prefix) - 10]}-{digest}".replace("--", "-")


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def _sourcedir(settings: Settings, s3: Any) -> str:
    """URI of train.py's sourcedir.tar.gz: configured, or uploaded once at a content-addressed key."""
    if settings.sourcedir_uri:
        return settings.sourcedir_uri
    from pipeline.training import source_tarball

    data = source_tarball()
    key = f"{settings.artifact_prefix}training/sourcedir-{hashlib.sha256(data).hexdigest()[:16]}.tar.gz"
    put_immutable(s3, settings.bucket, key, data, content_type="application/gzip")
    return f"s3://{settings.bucket}/{key}"


def _env_defaults(raw: dict[str, Any], settings: Settings) -> dict[str, Any]:
    doc = copy.deepcopy(raw)
    doc.pop("Comment", None)
    doc.pop("comment", None)
    dataset = doc.setdefault("dataset", {})
    if "train" not in dataset:
        dataset["train"] = settings.dataset_uri or (
            f"s3://{settings.bucket}/datasets/train/" if settings.bucket else ""
        )
    if "validation" not in dataset:
        dataset["validation"] = settings.validation_uri or None
    doc.setdefault("training", {}).setdefault("instance_type", settings.training_instance_type)
    doc.setdefault("components", {}).setdefault("prefix", settings.component_prefix)
    if settings.thing_group:
        doc.setdefault("deployment", {}).setdefault("thing_group", settings.thing_group)
    if settings.model_package_group:
        doc.setdefault("model_package_group", settings.model_package_group)
    return doc


def _require(doc: dict[str, Any], settings: Settings) -> None:
    missing = []
    if not settings.bucket:
        missing.append("MLOPS_EDGE_BUCKET (artifact bucket)")
    if not doc["dataset"].get("train"):
        missing.append("dataset.train (or MLOPS_EDGE_DATASET_URI)")
    if not doc.get("model_package_group"):
        missing.append("model_package_group (or MLOPS_EDGE_MODEL_PACKAGE_GROUP)")
    if not doc["deployment"].get("thing_group"):
        missing.append("deployment.thing_group (or MLOPS_EDGE_THING_GROUP)")
    if missing:
        raise ConfigurationError(
            "no value for " + ", ".join(missing) + ": set it in the input or the environment"
        )


def poll_budget(loop: dict[str, Any]) -> dict[str, Any]:
    """A poll loop's ``interval_s``, time budget ``timeout_s`` and ``max_polls``: given, else derived
    from the budget (and the back-off, ``pipeline.config.polling``) so the count (the ASL's bound)
    never ends the loop before the time does. Without ``first_interval_s`` the interval is fixed."""
    out = dict(loop)
    if "max_polls" not in out:
        out["max_polls"] = derived_max_polls(out)
    return out


def configure(event: dict[str, Any], *, settings: Settings, s3: Any) -> dict[str, Any]:
    """Validates ``event["input"]``, fills defaults, and returns ``{"config", "polls", "rollout"}``:
    ``rollout`` is the stage loop's state (its index, bounded by its count, and the stage rows)."""
    raw = event.get("input")
    raw = {} if raw is None else raw
    execution = str(event.get("execution") or "manual")
    schema = input_schema()
    validate(raw, schema)
    doc = fill_defaults(_env_defaults(raw, settings), schema, schema)
    _require(doc, settings)
    validate(doc, schema)

    bucket, prefix = settings.bucket, settings.artifact_prefix
    name = job_name(execution)
    hps = {**doc["hyperparameters"], "target": doc["dataset"]["target"], "task": doc["dataset"]["task"]}
    model_package_arn = doc.get("model_package_arn")
    training: dict[str, Any] = {"job_name": name}
    if not model_package_arn:
        split_s3_uri(doc["dataset"]["train"])
        channels = [_channel("train", doc["dataset"]["train"])]
        if doc["dataset"].get("validation"):
            channels.append(_channel("validation", doc["dataset"]["validation"]))
        training.update(
            algorithm_specification={
                "TrainingImage": settings.training_image,
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": f"validation:{m}", "Regex": f"#metric validation:{m}=([-0-9.eE+]+)"}
                    for m in METRIC_NAMES
                ],
            },
            hyperparameters={
                **{k: str(v) for k, v in sorted(hps.items())},
                "sagemaker_program": "train.py",
                "sagemaker_submit_directory": _sourcedir(settings, s3),
            },
            input_data_config=channels,
            output_data_config={"S3OutputPath": f"s3://{bucket}/{prefix}training/"},
            resource_config={
                "InstanceType": doc["training"]["instance_type"],
                "InstanceCount": 1,
                "VolumeSizeInGB": doc["training"]["volume_size_gb"],
            },
            stopping_condition={"MaxRuntimeInSeconds": doc["training"]["max_runtime_s"]},
        )
    components = doc["components"]
    config = {
        "execution": execution,
        "bucket": bucket,
        "artifact_prefix": prefix,
        "state_prefix": settings.state_prefix,
        "dataset": doc["dataset"],
        "training": training,
        "quality": doc["quality"],
        "model_package_group": doc["model_package_group"],
        "model_package_arn": model_package_arn,
        "auto_approve": doc["auto_approve"],
        "components": {
            "prefix": components["prefix"],
            "model_name": f"{components['prefix']}.Model",
            "inference_name": f"{components['prefix']}.Inference",
            "inference_configuration": components["inference_configuration"],
        },
        "deployment": doc["deployment"],
        "poll": {loop: poll_budget(doc["poll"][loop]) for loop in POLL_LOOPS},
        "verification": doc["verification"],
        # the devices' window length (PublishComponents/Deploy), the retraining rule's switch
        # (Promote) and what the monitoring function judges over (via context.json)
        "monitoring": doc["monitoring"],
        # as given (with defaults), for monitoring/<model_version>/context.json: a retraining on
        # drift starts with the same hyperparameters (training.hyperparameters are the job's strings)
        "hyperparameters": doc["hyperparameters"],
        "rollout": normalize_rollout(doc.get("rollout"), doc["deployment"], settings.canary_thing_group),
        "input": copy.deepcopy(raw),  # as validated; context.json's, a drift retraining's settings
    }
    return {
        "config": config,
        "polls": {loop: {"count": 0} for loop in POLL_LOOPS},
        "rollout": {"index": 0, "count": len(config["rollout"]["stages"]), "stages": []},
    }
