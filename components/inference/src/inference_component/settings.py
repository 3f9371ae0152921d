"""Component configuration: the recipe's keys, with ``{iot:thingName}`` resolved."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

THING_VARIABLE = "{iot:thingName}"


@dataclass(frozen=True)
class Settings:
    """Component configuration after ``{iot:thingName}`` is resolved."""

    thing: str
    request_topic: str
    result_topic: str
    telemetry_topic: str
    local_request_topic: str
    local_result_topic: str
    telemetry_interval_s: float
    max_request_bytes: int
    #: rows in one request; the engine is loaded with it as its batch limit (one limit, one error)
    max_rows: int
    max_queued_requests: int = 100
    max_inflight_publishes: int = 10
    #: issue 16: where and how often the monitoring window is published (0 s: monitoring off)
    monitoring_topic: str = ""
    monitoring_window_s: float = 0.0

    @classmethod
    def from_config(cls, config: dict[str, Any], thing: str) -> Settings:
        """Read the recipe's configuration keys; ``{iot:thingName}`` is substituted here too.

        A nucleus interpolates recipe variables in configuration only when told to
        (``interpolateComponentConfiguration``); substituting here keeps both cases working.
        """

        def topic(key: str, default: str) -> str:
            return str(config.get(key) or default).replace(THING_VARIABLE, thing)

        def positive(key: str, default: int) -> int:
            return max(1, int(config.get(key, default)))

        return cls(
            thing=thing,
            request_topic=topic("RequestTopic", "edge/{iot:thingName}/inference/request"),
            result_topic=topic("ResultTopic", "edge/{iot:thingName}/inference/result"),
            telemetry_topic=topic("TelemetryTopic", "edge/{iot:thingName}/telemetry"),
            local_request_topic=topic("LocalRequestTopic", "edge/inference/request"),
            local_result_topic=topic("LocalResultTopic", "edge/inference/result"),
            telemetry_interval_s=float(config.get("TelemetryIntervalSeconds", 10)),
            max_request_bytes=positive("MaxRequestBytes", 1 << 20),
            max_rows=positive("MaxRows", 4096),
            max_queued_requests=positive("MaxQueuedRequests", 100),
            max_inflight_publishes=positive("MaxInflightPublishes", 10),
            monitoring_topic=topic("MonitoringTopic", "edge/{iot:thingName}/monitoring"),
            monitoring_window_s=window_seconds(config.get("MonitoringWindowSeconds", 300)),
        )


def window_seconds(value: Any) -> float:
    """``MonitoringWindowSeconds``: 0 (monitoring off) or at least one second."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not (seconds == 0 or 1 <= seconds <= 86400):
        raise ValueError(
            f"MonitoringWindowSeconds must be 0 (monitoring off) or 1 to 86400 seconds, got {value!r}"
        )
    return seconds


def thing_name() -> str:
    """The device's thing name, as the nucleus passes it to every component."""
    return os.environ.get("AWS_IOT_THING_NAME", "unknown-thing")
