"""Request handling: admit, parse, predict, answer — and never let a request go unanswered.

Every request gets exactly one result on the matching result topic: ``ok: true`` with predictions,
model name/version and latency, or ``ok: false`` with an error code and message naming the problem.

Where the rest lives: the bounded queue, its worker, the publish window and the batched rejections
(docs/contracts.md §5) in :mod:`.request_queue`; parsing and encoding in :mod:`.request_parsing`;
the configuration in :mod:`.settings`. Their names are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from typing import Any, Protocol

from edge_runtime.inference import InvalidInput

from .messaging import Messaging
from .request_parsing import (
    MAX_ID_CHARS,
    RequestError,
    _dumps,
    _float32_digits,
    _parse,
    _single_row,
    _valid_id,
)
from .request_queue import IOT_CORE_MAX_MESSAGE_BYTES, REJECTION_FLUSH_S, RequestQueue, _Job
from .settings import THING_VARIABLE, Settings, thing_name
from .telemetry import Telemetry

__all__ = [
    "IOT_CORE_MAX_MESSAGE_BYTES",
    "MAX_ID_CHARS",
    "REJECTION_FLUSH_S",
    "THING_VARIABLE",
    "InferenceService",
    "Predictor",
    "RequestError",
    "Settings",
    "thing_name",
]


class Predictor(Protocol):
    """What the service needs from ``edge_runtime.inference.Engine`` (contracts §2)."""

    manifest: dict[str, Any]

    def predict(self, payload: Any) -> dict[str, Any]: ...


class InferenceService(RequestQueue):
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
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._inflight = 0  # IoT publishes handed to the nucleus and not yet acknowledged
        self._busy = False  # a request is being handled (by the worker, or inline)
        self._waiting_to_publish = False  # the worker waits for a publish slot: THROTTLED
        self._rejections: list[dict[str, Any]] = []  # IoT rejections until the next flush
        self._threads: list[threading.Thread] = []
        self._features = frozenset(manifest.get("features") or ())

    # -- wiring ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker, the rejection flusher and telemetry, then subscribe to both topics."""
        s = self.settings
        for name, target in (
            ("inference-worker", self._work_loop),
            ("rejections", self._flush_loop),
            ("telemetry", self._telemetry_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.messaging.subscribe_iot(s.request_topic, self._on_iot)
        self.messaging.subscribe_local(s.local_request_topic, self._on_local)
        self.messaging.report_running()

    def stop(self) -> None:
        """Answer what is queued, send pending rejections, stop, publish a last snapshot."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._flush_rejections()
        self.publish_telemetry()

    def _on_iot(self, topic: str, payload: bytes) -> None:
        self._admit("iot", payload)

    def _on_local(self, topic: str, payload: bytes) -> None:
        self._admit("local", payload)

    # -- the work -------------------------------------------------------------------------------
    def handle(self, payload: bytes, *, queued_ms: float = 0.0, max_result_bytes: int | None = None) -> bytes:
        """One request in, one serialized result out; never raises.

        ``max_result_bytes``: a result larger than that (IoT Core takes at most 128 KiB) is
        answered with ``RESULT_TOO_LARGE`` instead, which says how many rows would fit.
        """
        start = time.perf_counter()
        request_id: Any = None
        try:
            request = self._parse(payload)
            request_id = request.get("id")
            if not _valid_id(request_id):
                raise RequestError(
                    "MISSING_ID",
                    f"request needs a non-empty string 'id' of at most {MAX_ID_CHARS} characters",
                )
            body = {k: v for k, v in request.items() if k != "id"}
            response = self._predict(_single_row(body, self._features))
            latency_ms = (time.perf_counter() - start) * 1000.0
            predictions = _float32_digits(response.get("predictions", []))
            encoded = _dumps(
                {
                    "id": request_id,
                    "ok": True,
                    "predictions": predictions,
                    "model": response.get("model") or self.model,
                    "engine": response.get("engine"),  # "accelerated" or "standard": which model ran
                    "latency_ms": round(latency_ms, 4),
                    "queued_ms": round(queued_ms, 3),
                    "thing": self.settings.thing,
                }
            )
            if max_result_bytes is not None and len(encoded) > max_result_bytes:
                fits = max(1, len(predictions) * max_result_bytes // len(encoded) - 1)
                raise RequestError(
                    "RESULT_TOO_LARGE",
                    f"the result of {len(predictions)} rows is {len(encoded)} bytes, over the "
                    f"{max_result_bytes} bytes of an IoT Core message; send at most {fits} rows at a time",
                )
            self.telemetry.record(latency_ms, ok=True)
            return encoded
        except RequestError as exc:
            self.telemetry.record(None, ok=False)
            result = self._error(request_id, exc.code, str(exc))
        except Exception as exc:  # a bug or an engine failure: answer, count, keep serving
            self.telemetry.record(None, ok=False)
            result = self._error(request_id, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        return _dumps(result)

    def _parse(self, payload: bytes) -> dict[str, Any]:
        return _parse(payload, self.settings.max_request_bytes)

    def _predict(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.engine.predict(body)
        except InvalidInput as exc:
            if not exc.code:  # the engine's bug, not the caller's: answered as INTERNAL_ERROR
                raise
            raise RequestError(str(exc.code), str(exc)) from None

    def _error(self, request_id: Any, code: str, message: str) -> dict[str, Any]:
        return {
            "id": request_id if _valid_id(request_id) else None,
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
        with self._cond:
            doc["queue"] = {"depth": len(self._queue), "limit": self.settings.max_queued_requests}
        with contextlib.suppress(Exception):  # telemetry must never take the service down
            self.messaging.publish_iot(self.settings.telemetry_topic, json.dumps(doc).encode())

    def _telemetry_loop(self) -> None:
        while not self._stop.wait(self.settings.telemetry_interval_s):
            self.publish_telemetry()
