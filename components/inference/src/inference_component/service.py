"""Request handling: parse, predict, answer — and never let a bad request stop the service.

Every request gets exactly one result on the matching result topic: ``ok: true`` with predictions,
model name/version and latency, or ``ok: false`` with an error code and message naming the problem.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from edge_runtime.inference import InvalidInput

from .messaging import Messaging
from .telemetry import Telemetry

THING_VARIABLE = "{iot:thingName}"


class Predictor(Protocol):
    """What the service needs from ``edge_runtime.inference.Engine`` (contracts §2)."""

    manifest: dict[str, Any]

    def predict(self, payload: Any) -> dict[str, Any]: ...


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
    max_rows: int

    @classmethod
    def from_config(cls, config: dict[str, Any], thing: str) -> Settings:
        """Read the recipe's configuration keys; ``{iot:thingName}`` is substituted here too.

        A nucleus interpolates recipe variables in configuration only when told to
        (``interpolateComponentConfiguration``); substituting here keeps both cases working.
        """

        def topic(key: str, default: str) -> str:
            return str(config.get(key) or default).replace(THING_VARIABLE, thing)

        return cls(
            thing=thing,
            request_topic=topic("RequestTopic", "edge/{iot:thingName}/inference/request"),
            result_topic=topic("ResultTopic", "edge/{iot:thingName}/inference/result"),
            telemetry_topic=topic("TelemetryTopic", "edge/{iot:thingName}/telemetry"),
            local_request_topic=topic("LocalRequestTopic", "edge/inference/request"),
            local_result_topic=topic("LocalResultTopic", "edge/inference/result"),
            telemetry_interval_s=float(config.get("TelemetryIntervalSeconds", 10)),
            max_request_bytes=int(config.get("MaxRequestBytes", 1 << 20)),
            max_rows=int(config.get("MaxRows", 4096)),
        )


class RequestError(Exception):
    """A request the service refuses, with a stable code for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_ROW_KEYS = ("instances", "records", "rows", "features")


def _row_count(request: dict[str, Any]) -> int:
    """Rows in a request, for the size limit (the engine validates the shape itself)."""
    for key in _ROW_KEYS:
        value = request.get(key)
        if isinstance(value, list):
            return len(value) if value and isinstance(value[0], list | dict) else 1
    return 1


class InferenceService:
    """Answers inference requests from IoT Core and local pub/sub; publishes telemetry."""

    def __init__(self, engine: Predictor, messaging: Messaging, settings: Settings) -> None:
        self.engine = engine
        self.messaging = messaging
        self.settings = settings
        self.telemetry = Telemetry()
        manifest = engine.manifest or {}
        self.model = {
            "name": str(manifest.get("name", "")),
            "version": str(manifest.get("model_version") or getattr(engine, "version", "") or ""),
        }
        self._stop = threading.Event()
        self._telemetry_thread: threading.Thread | None = None

    # -- wiring ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to both request topics and start the telemetry loop."""
        s = self.settings
        self.messaging.subscribe_iot(s.request_topic, self._on_iot)
        self.messaging.subscribe_local(s.local_request_topic, self._on_local)
        self._telemetry_thread = threading.Thread(target=self._telemetry_loop, name="telemetry", daemon=True)
        self._telemetry_thread.start()
        self.messaging.report_running()

    def stop(self) -> None:
        """Stop telemetry and publish a last snapshot."""
        self._stop.set()
        if self._telemetry_thread:
            self._telemetry_thread.join(timeout=2)
        self.publish_telemetry()

    def _on_iot(self, topic: str, payload: bytes) -> None:
        result = self.handle(payload)
        self.messaging.publish_iot(self.settings.result_topic, result)

    def _on_local(self, topic: str, payload: bytes) -> None:
        result = self.handle(payload)
        self.messaging.publish_local(self.settings.local_result_topic, result)

    # -- the work -------------------------------------------------------------------------------
    def handle(self, payload: bytes) -> bytes:
        """One request in, one serialized result out; never raises."""
        start = time.perf_counter()
        request_id: Any = None
        try:
            request = self._parse(payload)
            request_id = request.get("id")
            if not isinstance(request_id, str) or not request_id:
                raise RequestError("MISSING_ID", "request needs a non-empty string 'id'")
            body = {k: v for k, v in request.items() if k != "id"}
            if _row_count(body) > self.settings.max_rows:
                raise RequestError("TOO_MANY_ROWS", f"more than {self.settings.max_rows} rows in one request")
            response = self._predict(body)
            latency_ms = (time.perf_counter() - start) * 1000.0
            self.telemetry.record(latency_ms, ok=True)
            result = {
                "id": request_id,
                "ok": True,
                "predictions": response.get("predictions", []),
                "model": response.get("model") or self.model,
                "latency_ms": round(latency_ms, 4),
                "thing": self.settings.thing,
            }
        except RequestError as exc:
            self.telemetry.record(None, ok=False)
            result = self._error(request_id, exc.code, str(exc))
        except Exception as exc:  # a bug or an engine failure: answer, count, keep serving
            self.telemetry.record(None, ok=False)
            result = self._error(request_id, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        return json.dumps(result, separators=(",", ":")).encode()

    def _parse(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.settings.max_request_bytes:
            raise RequestError(
                "TOO_LARGE", f"request is {len(payload)} bytes, limit {self.settings.max_request_bytes}"
            )
        if not payload.strip():
            raise RequestError("EMPTY_REQUEST", "request payload is empty")
        try:
            request = json.loads(payload)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestError("INVALID_JSON", f"request is not valid JSON: {exc}") from None
        if not isinstance(request, dict):
            raise RequestError(
                "INVALID_REQUEST", f"request must be a JSON object, got {type(request).__name__}"
            )
        return request

    def _predict(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.engine.predict(body)
        except InvalidInput as exc:
            if not exc.code:  # the engine's bug, not the caller's: answered as INTERNAL_ERROR
                raise
            raise RequestError(str(exc.code), str(exc)) from None

    def _error(self, request_id: Any, code: str, message: str) -> dict[str, Any]:
        return {
            "id": request_id if isinstance(request_id, str) else None,
            "ok": False,
            "error": {"code": code, "message": message},
            "model": self.model,
            "thing": self.settings.thing,
        }

    # -- telemetry ------------------------------------------------------------------------------
    def publish_telemetry(self) -> None:
        """Publish one telemetry snapshot on IoT Core."""
        doc = {"thing": self.settings.thing, "model": self.model, "timestamp": time.time()}
        doc.update(self.telemetry.snapshot())
        with contextlib.suppress(Exception):  # telemetry must never take the service down
            self.messaging.publish_iot(self.settings.telemetry_topic, json.dumps(doc).encode())

    def _telemetry_loop(self) -> None:
        while not self._stop.wait(self.settings.telemetry_interval_s):
            self.publish_telemetry()


def thing_name() -> str:
    """The device's thing name, as the nucleus passes it to every component."""
    return os.environ.get("AWS_IOT_THING_NAME", "unknown-thing")
