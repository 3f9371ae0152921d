"""Lambda handler: MonitorDrift — a device's monitoring window from the IoT rule on
``edge/+/monitoring``, judged against the training baseline (lambdas.core.monitoring)."""

from __future__ import annotations

from typing import Any

from lambdas.core.monitoring import monitor_window
from pipeline.aws import client
from pipeline.config.function_env import Settings

S3 = client("s3")
EVENTS = client("events")
SETTINGS = Settings.from_env()


def handler(event: Any, context: object) -> dict[str, Any]:
    return monitor_window(event, settings=SETTINGS, s3=S3, events=EVENTS)
