"""RegisterModel: a SageMaker model package version for the exported model, or the given one.

The package links the ONNX artifact and its SHA-256 (customer metadata), carries the metrics
(ModelMetrics -> a JSON statistics object) and stays deployable to a SageMaker endpoint too
(InferenceSpecification with the XGBoost container and model.tar.gz). Its version number becomes
the model component's patch version, so it must exist before packaging.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, put_immutable, sha256_hex, split_s3_uri, transient_errors
from lambdas.core.exceptions import ModelRejected, RegistryError
from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

#: Customer metadata keys this pipeline writes; a package without them cannot be deployed by it.
METADATA_KEYS = ("onnx_uri", "onnx_sha256", "manifest_uri", "golden_uri", "task")
#: ``file:<name>`` = the SHA-256 of an optional model file (``OPTIONAL_MODEL_FILES``) registered
#: with the model: PublishComponents ships only bytes with the registered digest, as for model.onnx.
FILE_KEY = "file:"


def optional_files(onnx_uri: str, digests: dict[str, str]) -> dict[str, dict[str, str]]:
    """name -> ``{"uri", "sha256"}``: the export writes optional files beside model.onnx."""
    folder = onnx_uri.rsplit("/", 1)[0]
    return {
        name: {"uri": f"{folder}/{name}", "sha256": digests[name]}
        for name in OPTIONAL_MODEL_FILES
        if name in digests
    }


def _file_digests(s3: Any, onnx_uri: str) -> dict[str, str]:
    """The SHA-256 of each optional file the export uploaded beside model.onnx (absent: skipped)."""
    bucket, key = split_s3_uri(onnx_uri)
    folder = key.rsplit("/", 1)[0]
    digests: dict[str, str] = {}
    for name in OPTIONAL_MODEL_FILES:
        with transient_errors(f"s3 head s3://{bucket}/{folder}/{name}"):
            try:
                head = s3.head_object(Bucket=bucket, Key=f"{folder}/{name}")
            except ClientError as exc:
                if is_not_found(exc):
                    continue
                raise
            digest = head.get("Metadata", {}).get("sha256")
            if not digest:  # not written by put_immutable: hash what is there now
                digest = sha256_hex(s3.get_object(Bucket=bucket, Key=f"{folder}/{name}")["Body"].read())
        digests[name] = digest
    return digests


def _model_from_metadata(arn: str, metadata: dict[str, str]) -> dict[str, Any]:
    missing = [k for k in METADATA_KEYS if not metadata.get(k)]
    if missing:
        raise RegistryError(
            f"model package {arn} lacks the ONNX metadata {missing}: only packages registered by this "
            "pipeline (CustomerMetadataProperties onnx_uri, onnx_sha256, ...) can be deployed"
        )
    digests = {k[len(FILE_KEY) :]: v for k, v in metadata.items() if k.startswith(FILE_KEY)}
    return {
        "onnx_uri": metadata["onnx_uri"],
        "manifest_uri": metadata["manifest_uri"],
        "golden_uri": metadata["golden_uri"],
        "sha256": metadata["onnx_sha256"],
        "task": metadata["task"],
        "files": optional_files(metadata["onnx_uri"], digests),
    }


def _describe(sagemaker: Any, arn: str) -> dict[str, Any]:
    with transient_errors(f"DescribeModelPackage {arn}"):
        try:
            return sagemaker.describe_model_package(ModelPackageName=arn)
        except ClientError as exc:
            raise RegistryError(f"cannot read model package {arn}: {exc}") from exc


def resolve(config: dict[str, Any], sagemaker: Any) -> dict[str, Any]:
    """The deploy-only path: read the given package and decide whether it may be deployed."""
    arn = config["model_package_arn"]
    package = _describe(sagemaker, arn)
    status = package.get("ModelApprovalStatus", "PendingManualApproval")
    if status == "Rejected":
        raise ModelRejected(f"model package {arn} is Rejected in the registry: approve it or pick another")
    return {
        "model_package_arn": package["ModelPackageArn"],
        "model_package_version": int(package["ModelPackageVersion"]),
        "approval_status": status,
        "deploy": status == "Approved" or bool(config["auto_approve"]),
        "model": _model_from_metadata(arn, package.get("CustomerMetadataProperties") or {}),
    }


def register(config: dict[str, Any], model: dict[str, Any], sagemaker: Any, s3: Any) -> dict[str, Any]:
    """Creates the model package version (PendingManualApproval; Promote approves it once verified)."""
    bucket, manifest_key = split_s3_uri(model["manifest_uri"])
    stats_key = manifest_key.rsplit("/", 1)[0] + "/metrics.json"
    stats = {
        "metrics": model.get("metrics") or {},
        "parity": model.get("parity") or {},
        "task": model.get("task"),
    }
    put_immutable(
        s3, bucket, stats_key, json.dumps(stats, sort_keys=True).encode(), content_type="application/json"
    )
    metadata = {
        "onnx_uri": model["onnx_uri"],
        "onnx_sha256": model["sha256"],
        "manifest_uri": model["manifest_uri"],
        "golden_uri": model["golden_uri"],
        "task": str(model.get("task") or "unknown"),
        "training_job": model.get("training_job") or config["training"]["job_name"],
        "execution": config["execution"][:256],
    }
    digests = _file_digests(s3, model["onnx_uri"])
    metadata.update({FILE_KEY + name: digest for name, digest in digests.items()})
    request: dict[str, Any] = {
        "ModelPackageGroupName": config["model_package_group"],
        "ModelPackageDescription": f"XGBoost -> ONNX ({metadata['task']}), sha256 {model['sha256']}",
        "ModelApprovalStatus": "PendingManualApproval",
        "CustomerMetadataProperties": metadata,
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/{stats_key}"}
            }
        },
    }
    image = (config["training"].get("algorithm_specification") or {}).get("TrainingImage")
    if image and model.get("model_data_uri"):
        request["InferenceSpecification"] = {
            "Containers": [{"Image": image, "ModelDataUrl": model["model_data_uri"]}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        }
    with transient_errors("CreateModelPackage"):
        try:
            arn = sagemaker.create_model_package(**request)["ModelPackageArn"]
        except ClientError as exc:
            raise RegistryError(
                f"cannot register in model package group {config['model_package_group']!r}: {exc}"
            ) from exc
    package = _describe(sagemaker, arn)
    return {
        "model_package_arn": arn,
        "model_package_version": int(package["ModelPackageVersion"]),
        "approval_status": package.get("ModelApprovalStatus", "PendingManualApproval"),
        "deploy": bool(config["auto_approve"]),
        "model": {
            **{k: model[k] for k in ("onnx_uri", "manifest_uri", "golden_uri", "sha256", "task")},
            "files": optional_files(model["onnx_uri"], digests),
        },
    }


def register_model(event: dict[str, Any], *, sagemaker: Any, s3: Any) -> dict[str, Any]:
    config = event["config"]
    if config.get("model_package_arn"):
        return resolve(config, sagemaker)
    return register(config, event["model"], sagemaker, s3)
