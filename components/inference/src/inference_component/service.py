"""Request handling: admit, parse, predict, answer — and never let a request go unanswered.

Every request gets exactly one result on the matching result topic: ``ok: true`` with predictions,
model name/version and latency, or ``ok: false`` with an error code and message naming the problem.

Overload (docs/contracts.md §5): requests wait in a bounded queue (``MaxQueuedRequests``) served by
one worker, which keeps at most ``MaxInflightPublishes`` results in the nucleus's IoT Core publish
path at once. That path is throttled to AWS IoT Core's 100 publishes/s per connection, so without
the window results would pile up there for seconds. A request that finds the queue full is
rejected at once with ``BUSY`` (inference is behind) or ``THROTTLED`` (results are waiting for the
publish limit); rejections of the IoT topic are sent together every ``REJECTION_FLUSH_S`` as
``{"results": [<error result>, ...]}`` (one result alone is sent as itself), because one message
per rejected request would need the very publish capacity that is exhausted. Telemetry counts
them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from edge_runtime.inference import InvalidInput

from .messaging import Messaging
from .telemetry import Telemetry

THING_VARIABLE = "{iot:thingName}"
#: How often rejected IoT requests are answered, together in one message.
REJECTION_FLUSH_S = 0.1
#: AWS IoT Core's largest message: results and rejection messages must fit in it.
IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024
#: A request id is echoed in its answer, so it must be short enough to always fit one.
MAX_ID_CHARS = 256

log = logging.getLogger(__name__)


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
    #: rows in one request; the engine is loaded with it as its batch limit (one limit, one error)
    max_rows: int
    max_queued_requests: int = 100
    max_inflight_publishes: int = 10

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
        )


class RequestError(Exception):
    """A request the service refuses, with a stable code for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Job(NamedTuple):
    """One admitted request: where it came from, its bytes, when it arrived."""

    channel: str  # "iot" or "local"
    payload: bytes
    arrived: float  # time.perf_counter()


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
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._inflight = 0  # IoT publishes handed to the nucleus and not yet acknowledged
        self._busy = False  # a request is being handled (by the worker, or inline)
        self._waiting_to_publish = False  # the worker waits for a publish slot: THROTTLED
        self._rejections: list[dict[str, Any]] = []  # IoT rejections until the next flush
        self._threads: list[threading.Thread] = []

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

    # -- admission ------------------------------------------------------------------------------
    def _admit(self, channel: str, payload: bytes) -> None:
        """Answer the request now when idle, else queue it, or reject it when the queue is full.

        Idle (nothing queued or being handled, a publish slot free), the request is handled on
        the caller's thread, as before the queue existed: no hand-off to the worker on the way.
        """
        job = _Job(channel, payload, time.perf_counter())
        with self._cond:
            stopping = self._stop.is_set()
            idle = not self._queue and not self._busy
            inline = idle and not stopping and self._inflight < self.settings.max_inflight_publishes
            if inline:
                self._busy = True
            elif not stopping and len(self._queue) < self.settings.max_queued_requests:
                self._queue.append(job)
                self._cond.notify_all()
                return
            throttled = self._waiting_to_publish
        if inline:
            self._serve(job)
            return
        if self._stop.is_set():
            code, message = "BUSY", "the inference component is stopping; send the request again"
        elif throttled:
            code = "THROTTLED"
            message = (
                f"{self.settings.max_queued_requests} requests are already waiting: results leave "
                "the device no faster than its IoT Core publish limit (100/s per connection); "
                "send it again later, or more slowly"
            )
        else:
            code = "BUSY"
            message = (
                f"{self.settings.max_queued_requests} requests are already waiting for inference; "
                "send it again later, or more slowly"
            )
        self._reject(channel, payload, code, message)

    def _reject(self, channel: str, payload: bytes, code: str, message: str) -> None:
        self.telemetry.reject(code)
        result = self._error(_request_id(payload, self.settings.max_request_bytes), code, message)
        if channel == "local":
            self.messaging.publish_local(self.settings.local_result_topic, _dumps(result))
            return
        with self._cond:
            self._rejections.append(result)

    def _flush_loop(self) -> None:
        while not self._stop.wait(REJECTION_FLUSH_S):
            self._flush_rejections()

    def _flush_rejections(self) -> None:
        """Send the rejections gathered since the last flush: one message (or a few), not one each.

        Each message stays within IoT Core's 128 KiB (an error result is a few hundred bytes).
        """
        with self._cond:
            pending, self._rejections = self._rejections, []
        chunk: list[bytes] = []
        size = len(b'{"results":[]}')
        for result in pending:
            encoded = _dumps(result)
            if chunk and size + len(encoded) + 1 > IOT_CORE_MAX_MESSAGE_BYTES:
                self._send_rejections(chunk)
                chunk, size = [], len(b'{"results":[]}')
            chunk.append(encoded)
            size += len(encoded) + 1
        if chunk:
            self._send_rejections(chunk)

    def _send_rejections(self, chunk: list[bytes]) -> None:
        body = chunk[0] if len(chunk) == 1 else b'{"results":[' + b",".join(chunk) + b"]}"
        # outside the window: a few messages a second, and they must not wait behind results
        self._publish_iot(body, wait_for_slot=False)

    # -- the worker -----------------------------------------------------------------------------
    def _work_loop(self) -> None:
        while True:
            with self._cond:
                while (not self._queue or self._busy) and not self._stop.is_set():
                    self._cond.wait()
                while self._busy:  # stopping: let an inline request finish first
                    self._cond.wait(0.1)
                if not self._queue:
                    return  # stopping, and everything admitted has been answered
                job = self._queue.popleft()
                self._busy = True
            self._serve(job)

    def _serve(self, job: _Job) -> None:
        """Handle one admitted request and publish its result (the caller set ``_busy``)."""
        try:
            queued_ms = (time.perf_counter() - job.arrived) * 1000.0
            limit = None if job.channel == "local" else IOT_CORE_MAX_MESSAGE_BYTES
            result = self.handle(job.payload, queued_ms=queued_ms, max_result_bytes=limit)
            if job.channel == "local":
                self.messaging.publish_local(self.settings.local_result_topic, result)
            else:
                self._publish_iot(result, wait_for_slot=True)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _publish_iot(self, payload: bytes, *, wait_for_slot: bool) -> None:
        """Publish a result to IoT Core, first waiting for a slot in the window if asked to."""
        with self._cond:
            if wait_for_slot:
                while self._inflight >= self.settings.max_inflight_publishes and not self._stop.is_set():
                    self._waiting_to_publish = True
                    self._cond.wait(1.0)
                self._waiting_to_publish = False
            self._inflight += 1
        try:
            self.messaging.publish_iot(self.settings.result_topic, payload, on_done=self._published)
        except Exception as exc:  # the IPC connection failed: count it, keep serving
            self._published(exc)

    def _published(self, error: BaseException | None) -> None:
        with self._cond:
            self._inflight -= 1
            self._cond.notify_all()
        if error is not None:
            self.telemetry.publish_failed()
            log.warning("publishing a result failed: %s", error)

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
            response = self._predict(body)
            latency_ms = (time.perf_counter() - start) * 1000.0
            predictions = response.get("predictions", [])
            encoded = _dumps(
                {
                    "id": request_id,
                    "ok": True,
                    "predictions": predictions,
                    "model": response.get("model") or self.model,
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


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _parse(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The request object, or a ``RequestError`` naming what is wrong with the bytes.

    A Lambda-style event (``{"body": "<JSON request>"}``, the Greengrass reference sample's form)
    carries the whole request, its ``id`` included, in its body; an ``id`` beside the body is
    used as is and the engine reads the body.
    """
    if len(payload) > max_bytes:
        raise RequestError("TOO_LARGE", f"request is {len(payload)} bytes, limit {max_bytes}")
    if not payload.strip():
        raise RequestError("EMPTY_REQUEST", "request payload is empty")
    request = _loads(payload)
    if not isinstance(request, dict):
        raise RequestError("INVALID_REQUEST", f"request must be a JSON object, got {type(request).__name__}")
    body = request.get("body")
    if "id" not in request and isinstance(body, str | bytes) and set(request) == {"body"}:
        inner = _loads(body)
        if isinstance(inner, dict) and "id" in inner:
            return inner
    return request


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError("INVALID_JSON", f"request is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(
            "INVALID_JSON",
            "request nests arrays/objects too deeply to be read (a request needs at most 4 levels)",
        ) from None


def _request_id(payload: bytes, max_bytes: int) -> str | None:
    """The id of a request being rejected, if it has a usable one (it is parsed, not predicted)."""
    try:
        request_id = _parse(payload, max_bytes).get("id")
    except RequestError:
        return None
    return request_id if _valid_id(request_id) else None


def _valid_id(request_id: Any) -> bool:
    return isinstance(request_id, str) and 0 < len(request_id) <= MAX_ID_CHARS


def thing_name() -> str:
    """The device's thing name, as the nucleus passes it to every component."""
    return os.environ.get("AWS_IOT_THING_NAME", "unknown-thing")
