"""Lambda handler: Configure — validate the execution input, fill defaults (lambdas.core.configure)."""

from __future__ import annotations

from typing import Any

from lambdas.core.configure import configure
from pipeline.aws import client
from pipeline.config.function_env import Settings

SETTINGS = Settings.from_env()
S3 = client("s3")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return configure(event, settings=SETTINGS, s3=S3)
