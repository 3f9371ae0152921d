"""Lambda handler: ExportOnnx — trained model -> ONNX with parity proof (lambdas.core.export)."""

from __future__ import annotations

from typing import Any

from lambdas.core.export import export_onnx
from pipeline.aws import client

S3 = client("s3")
SAGEMAKER = client("sagemaker")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return export_onnx(event, s3=S3, sagemaker=SAGEMAKER)
