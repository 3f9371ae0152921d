"""RegisterModel core: package request shape (botocore Stubber), approval rules, the deploy-only path."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import ANY

from lambdas.core.exceptions import ModelRejected, RegistryError
from lambdas.core.registry import register_model

from .conftest import BUCKET, assert_selectable, stubbed

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/edge-models/4"
MODEL = {
    "onnx_uri": f"s3://{BUCKET}/artifacts/models/j/abc/model.onnx",
    "manifest_uri": f"s3://{BUCKET}/artifacts/models/j/abc/model.json",
    "golden_uri": f"s3://{BUCKET}/artifacts/models/j/abc/golden.json",
    "sha256": "ab" * 32,
    "task": "regression",
    "metrics": {"validation:rmse": 3.0},
    "parity": {"passed": True},
    "training_job": "j",
    "model_data_uri": f"s3://{BUCKET}/training/j/output/model.tar.gz",
}
METADATA = {
    "onnx_uri": MODEL["onnx_uri"],
    "onnx_sha256": MODEL["sha256"],
    "manifest_uri": MODEL["manifest_uri"],
    "golden_uri": MODEL["golden_uri"],
    "task": "regression",
}


def test_register_creates_a_pending_version_linking_the_onnx_artifact(
    s3: Any, config: dict[str, Any]
) -> None:
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response(
        "create_model_package",
        {"ModelPackageArn": ARN},
        {
            "ModelPackageGroupName": "edge-models",
            "ModelPackageDescription": ANY,
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": {
                **METADATA,
                "training_job": "j",
                "execution": "exec-1",
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {
                        "ContentType": "application/json",
                        "S3Uri": f"s3://{BUCKET}/artifacts/models/j/abc/metrics.json",
                    }
                }
            },
            "InferenceSpecification": ANY,
        },
    )
    stub.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "edge-models",
            "ModelPackageArn": ARN,
            "ModelPackageVersion": 4,
            "ModelApprovalStatus": "PendingManualApproval",
            "CreationTime": "2026-01-01T00:00:00Z",
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
        },
        {"ModelPackageName": ARN},
    )
    out = register_model({"config": config, "model": MODEL}, sagemaker=sagemaker, s3=s3)
    stub.assert_no_pending_responses()
    assert_selectable("register_model", out)
    assert out["model_package_version"] == 4 and out["deploy"] is True
    assert out["model"]["sha256"] == MODEL["sha256"]
    assert (
        b"validation:rmse"
        in s3.get_object(Bucket=BUCKET, Key="artifacts/models/j/abc/metrics.json")["Body"].read()
    )


def _describe(status: str, metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "ModelPackageName": "edge-models",
        "ModelPackageArn": ARN,
        "ModelPackageVersion": 4,
        "ModelApprovalStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "CustomerMetadataProperties": metadata,
    }


@pytest.mark.parametrize(
    ("status", "auto_approve", "deploy"),
    [
        ("Approved", False, True),
        ("PendingManualApproval", True, True),
        ("PendingManualApproval", False, False),
    ],
)
def test_given_package_is_resolved(
    config: dict[str, Any], status: str, auto_approve: bool, deploy: bool
) -> None:
    config.update(model_package_arn=ARN, auto_approve=auto_approve)
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response("describe_model_package", _describe(status, METADATA), {"ModelPackageName": ARN})
    out = register_model({"config": config}, sagemaker=sagemaker, s3=None)
    assert_selectable("register_model", out)
    assert out["deploy"] is deploy and out["approval_status"] == status
    assert out["model"]["onnx_uri"] == MODEL["onnx_uri"]


def test_rejected_package_is_not_deployed(config: dict[str, Any]) -> None:
    config.update(model_package_arn=ARN)
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response("describe_model_package", _describe("Rejected", METADATA), {"ModelPackageName": ARN})
    with pytest.raises(ModelRejected, match="Rejected"):
        register_model({"config": config}, sagemaker=sagemaker, s3=None)


def test_foreign_package_without_onnx_metadata(config: dict[str, Any]) -> None:
    config.update(model_package_arn=ARN)
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response("describe_model_package", _describe("Approved", {}), {"ModelPackageName": ARN})
    with pytest.raises(RegistryError, match="lacks the ONNX metadata"):
        register_model({"config": config}, sagemaker=sagemaker, s3=None)


def test_missing_group_is_a_registry_error(s3: Any, config: dict[str, Any]) -> None:
    sagemaker, stub = stubbed("sagemaker")
    stub.add_client_error(
        "create_model_package", "ValidationException", "Model Package Group does not exist."
    )
    with pytest.raises(RegistryError, match="edge-models"):
        register_model({"config": config, "model": MODEL}, sagemaker=sagemaker, s3=s3)


def test_optional_files_are_registered_with_their_digest_and_resolved_back(
    s3: Any, config: dict[str, Any]
) -> None:
    """The baseline beside model.onnx gets ``file:<name>`` = its SHA-256 in the package metadata,
    and the deploy-only path reads the same name -> uri/sha256 back from it."""
    from lambdas.core.aws import put_immutable

    digest, _ = put_immutable(
        s3, BUCKET, "artifacts/models/j/abc/baseline/statistics.json", b'{"version": 0}', content_type="x"
    )
    sagemaker, stub = stubbed("sagemaker")
    expected = {
        **METADATA,
        "training_job": "j",
        "execution": "exec-1",
        "file:baseline/statistics.json": digest,
    }
    stub.add_response(
        "create_model_package",
        {"ModelPackageArn": ARN},
        {
            "ModelPackageGroupName": "edge-models",
            "ModelPackageDescription": ANY,
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": expected,
            "ModelMetrics": ANY,
            "InferenceSpecification": ANY,
        },
    )
    stub.add_response(
        "describe_model_package", _describe("PendingManualApproval", expected), {"ModelPackageName": ARN}
    )
    out = register_model({"config": config, "model": MODEL}, sagemaker=sagemaker, s3=s3)
    stub.assert_no_pending_responses()
    files = {
        "baseline/statistics.json": {
            "uri": f"s3://{BUCKET}/artifacts/models/j/abc/baseline/statistics.json",
            "sha256": digest,
        }
    }
    assert out["model"]["files"] == files

    config.update(model_package_arn=ARN)
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response("describe_model_package", _describe("Approved", expected), {"ModelPackageName": ARN})
    assert register_model({"config": config}, sagemaker=sagemaker, s3=None)["model"]["files"] == files
