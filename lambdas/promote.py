"""Lambda handler: Promote — last known good + approve the model package + the drift retraining
rule's switch (lambdas.core.promote)."""

from __future__ import annotations

from typing import Any

from lambdas.core.promote import promote
from pipeline.aws import client
from pipeline.config.function_env import Settings

S3 = client("s3")
SAGEMAKER = client("sagemaker")
EVENTS = client("events")
RULE = Settings.from_env().retraining_rule


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return promote(event, s3=S3, sagemaker=SAGEMAKER, events=EVENTS, retraining_rule=RULE)
