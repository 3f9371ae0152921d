"""Lambda handler: VerifyOnDevice — golden requests over MQTT to every device (lambdas.core.verify)."""

from __future__ import annotations

import os
from typing import Any

from lambdas.core.verify import mqtt_settings, verify_on_device
from pipeline.aws import client
from pipeline.mqtt import MqttClient, request_response_many

S3 = client("s3")


def _connect() -> MqttClient:
    settings = mqtt_settings(os.environ, secrets=lambda: client("secretsmanager"), iot=lambda: client("iot"))
    return MqttClient(settings)


def _remaining_s(context: object) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else None


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return verify_on_device(
        event,
        s3=S3,
        connect=_connect,
        exchange=request_response_many,
        time_budget_s=_remaining_s(context),
    )
