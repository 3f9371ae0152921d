"""SageMaker errors, each carrying the AWS error code botocore maps to an exception class."""

from __future__ import annotations


class SageMakerError(Exception):
    code = "ValidationException"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationException(SageMakerError):
    code = "ValidationException"


class ResourceInUse(SageMakerError):
    code = "ResourceInUse"


class ResourceNotFound(SageMakerError):
    code = "ResourceNotFound"
