"""UpdateModelPackage as AWS documents it (local_cloud/services/sagemaker/model_packages.py):
metadata merged and removed, fields left out kept, the service model's limits refused with AWS's
messages. moto in this process, through botocore, with the patch applied only for these tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from local_cloud.services.sagemaker import model_packages

GROUP = "unit-packages"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
SPEC = {
    "Containers": [{"Image": IMAGE}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}
PATTERN = r"Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,"


@pytest.fixture
def sm() -> Iterator[Any]:
    """A SageMaker client on moto with the patch; moto's own method back afterwards. Client-side
    validation is off so that the server's checks are what is tested."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package
    original_create = SageMakerModelBackend.create_model_package
    model_packages.patch_update_model_package()
    model_packages.patch_create_model_package()
    try:
        with mock_aws():
            client = boto3.client(
                "sagemaker",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(parameter_validation=False),
            )
            client.create_model_package_group(ModelPackageGroupName=GROUP)
            yield client
    finally:
        SageMakerModelBackend.update_model_package = original  # type: ignore[method-assign]
        SageMakerModelBackend.create_model_package = original_create  # type: ignore[method-assign]


def _package(sm: Any, metadata: dict[str, str] | None = None, **extra: Any) -> str:
    request: dict[str, Any] = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": SPEC,
        **extra,
    }
    if metadata is not None:
        request["CustomerMetadataProperties"] = metadata
    return str(sm.create_model_package(**request)["ModelPackageArn"])


def _refusal(sm: Any, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        sm.update_model_package(**request)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


def test_given_metadata_merges_into_the_map(sm: Any) -> None:
    arn = _package(sm, {"onnx_uri": "s3://b/k", "execution": "run-1"})
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"execution": "run-2", "x": "1"})
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"onnx_uri": "s3://b/k", "execution": "run-2", "x": "1"}
    assert described["ModelApprovalStatus"] == "PendingManualApproval"  # left out: kept


def test_a_bare_approval_keeps_metadata_and_the_earlier_description(sm: Any) -> None:
    arn = _package(sm, {"onnx_uri": "s3://b/k"})
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="why")
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "why"
    assert described["CustomerMetadataProperties"] == {"onnx_uri": "s3://b/k"}


def test_keys_to_remove_go_after_the_merge_and_an_absent_key_is_no_error(sm: Any) -> None:
    arn = _package(sm, {"a": "1", "b": "2", "c": "3"})
    sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"d": "4"},
        CustomerMetadataPropertiesToRemove=["a", "never-there"],
    )
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {
        "b": "2",
        "c": "3",
        "d": "4",
    }
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["b", "c", "d"])
    assert "CustomerMetadataProperties" not in sm.describe_model_package(ModelPackageName=arn)


def test_removing_from_a_package_without_metadata_is_no_error(sm: Any) -> None:
    arn = _package(sm)
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["a"])
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"a": "1"})
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {"a": "1"}


def test_additional_inference_specifications_are_kept_when_left_out(sm: Any) -> None:
    extra = {"Name": "neo", "Containers": [{"Image": IMAGE}]}
    arn = _package(sm, AdditionalInferenceSpecifications=[extra])
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    described = sm.describe_model_package(ModelPackageName=arn)
    assert [s["Name"] for s in described["AdditionalInferenceSpecifications"]] == ["neo"]


def test_the_service_models_limits_give_awss_messages(sm: Any) -> None:
    arn = _package(sm, {"a": "1"})
    too_many = {f"k{i}": "v" for i in range(51)}
    message = _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties=too_many)
    assert message.startswith("1 validation error detected: Value '{k0=v, k1=v,")
    assert message.endswith(
        "at 'customerMetadataProperties' failed to satisfy constraint: "
        "Member must have length less than or equal to 50"
    )
    message = _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties={"k" * 129: "v"})
    assert "Map keys must satisfy constraint: [Member must have length less than or equal to 128, " in message
    assert PATTERN + "128}]" in message
    message = _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties={"k": "v" * 257})
    assert (
        "Map value must satisfy constraint: [Member must have length less than or equal to 256, " in message
    )
    assert "Map value" in _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties={"k": ""})
    assert "Map keys" in _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties={"a#b": "v"})
    assert "greater than or equal to 1" in _refusal(sm, ModelPackageArn=arn, CustomerMetadataProperties={})
    # refused as a whole: nothing of it was applied
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == {"a": "1"}


def test_letters_digits_spaces_and_the_listed_punctuation_are_allowed(sm: Any) -> None:
    arn = _package(sm)
    metadata = {"élan Ω_1.2:3/4=5+6-7@8": "s3://bucket/key-1 2", "k" * 128: "v" * 256}
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties=metadata)
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"] == metadata


def test_every_violation_is_reported_at_once(sm: Any) -> None:
    arn = _package(sm)
    message = _refusal(
        sm,
        ModelPackageArn=arn,
        ApprovalDescription="d" * 1025,
        CustomerMetadataPropertiesToRemove=["ok", "not ok!"],
    )
    assert message.startswith("2 validation errors detected: Value 'ddd")
    assert (
        "at 'approvalDescription' failed to satisfy constraint: Member must have length less than or equal to 1024; "
        in message
    )
    assert message.endswith(
        "Value '[ok, not ok!]' at 'customerMetadataPropertiesToRemove' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 128, "
        "Member must have length greater than or equal to 1, " + PATTERN + "128}]"
    )


def test_an_unknown_package_and_a_bad_status_are_refused(sm: Any) -> None:
    missing = "arn:aws:sagemaker:us-east-1:123456789012:model-package/unit-packages/99"
    assert _refusal(sm, ModelPackageArn=missing, ModelApprovalStatus="Approved") == (
        f"Model package {missing} not found"
    )
    arn = _package(sm, {"a": "1"})
    assert "modelApprovalStatus" in _refusal(sm, ModelPackageArn=arn, ModelApprovalStatus="Maybe")
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_a_member_of_the_wrong_type_is_a_serialization_error() -> None:
    from moto.sagemaker.exceptions import SagemakerClientError

    with pytest.raises(SagemakerClientError) as caught:
        model_packages.validate_update("arn", customer_metadata_properties={"a": 1})
    assert caught.value.code == "SerializationException"
    assert "CustomerMetadataProperties" in caught.value.message
    with pytest.raises(SagemakerClientError, match="CustomerMetadataPropertiesToRemove"):
        model_packages.validate_update("arn", customer_metadata_properties_to_remove="a")


def test_the_patch_refuses_a_moto_whose_method_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    def moved(self: Any, model_package_arn: str, **other: Any) -> str:
        return model_package_arn

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", moved)
    with pytest.raises(RuntimeError, match="update_model_package moved"):
        model_packages.patch_update_model_package()


def test_create_refuses_metadata_aws_refuses_and_keeps_what_it_accepts(sm: Any) -> None:
    """CreateModelPackage checks CustomerMetadataProperties as UpdateModelPackage does (moto alone
    stores any map): a comma in a value and an over-long key are refused together, nothing made."""
    with pytest.raises(ClientError) as refused:
        _package(sm, {"groups": "canary, fleet", "k" * 129: "v"})
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith("2 validation errors detected: ")
    assert "Map keys must satisfy constraint" in error["Message"] and PATTERN in error["Message"]
    assert sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    arn = _package(sm, {"groups": "canary fleet", "onnx_uri": "s3://b/k/model.onnx"})
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {
        "groups": "canary fleet",
        "onnx_uri": "s3://b/k/model.onnx",
    }
