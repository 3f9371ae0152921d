"""SageMaker integration errors carry the names state machines match on AWS."""

from __future__ import annotations

import pytest

from local_cloud.services.stepfunctions import integration_errors as ie


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("AccessDeniedException", "SageMaker.AmazonSageMakerException"),
        ("ValidationException", "SageMaker.AmazonSageMakerException"),
        ("ResourceLimitExceeded", "SageMaker.ResourceLimitExceededException"),
        ("ResourceInUse", "SageMaker.ResourceInUseException"),
    ],
)
def test_unmodelled_errors_are_the_sdk_exception_and_modelled_ones_keep_their_name(
    code: str, name: str
) -> None:
    assert ie.error_name("sagemaker", code, ie._modelled("sagemaker", code)) == name


def test_the_cause_reads_as_the_java_sdks() -> None:
    text = ie.cause("sagemaker", "User: x is not authorized", "AccessDeniedException", 400, "r-1")
    assert text == (
        "User: x is not authorized (Service: AmazonSageMaker; Status Code: 400; "
        "Error Code: AccessDeniedException; Request ID: r-1; Proxy: null)"
    )


def test_the_patch_applies_to_this_moto() -> None:
    ie.verify()
    ie.apply()
    ie.apply()  # idempotent
