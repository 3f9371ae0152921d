"""Lambda handler: EvaluateStage — the rollout stage's failed share against its threshold, its row
(lambdas.core.rollout)."""

from __future__ import annotations

from typing import Any

from lambdas.core.rollout import evaluate_stage
from pipeline.aws import client

S3 = client("s3")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return evaluate_stage(event, s3=S3)
