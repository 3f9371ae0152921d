"""Lambda handler: RegisterModel — model package version, or resolve the given one (lambdas.core.registry)."""

from __future__ import annotations

from typing import Any

from lambdas.core.registry import register_model
from pipeline.aws import client

S3 = client("s3")
SAGEMAKER = client("sagemaker")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return register_model(event, sagemaker=SAGEMAKER, s3=S3)
