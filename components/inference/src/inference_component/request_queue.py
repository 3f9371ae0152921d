"""Overload handling: the bounded request queue, its worker, the publish window, rejections.

Overload (docs/contracts.md §5): requests wait in a bounded queue (``MaxQueuedRequests``) served by
one worker, which keeps at most ``MaxInflightPublishes`` results in the nucleus's IoT Core publish
path at once. That path is throttled to AWS IoT Core's 100 publishes/s per connection, so without
the window results would pile up there for seconds. A request that finds the queue full is
rejected at once with ``BUSY`` (inference is behind) or ``THROTTLED`` (results are waiting for the
publish limit); rejections of the IoT topic are sent together every ``REJECTION_FLUSH_S`` as
``{"results": [<error result>, ...]}`` (one result alone is sent as itself), because one message
per rejected request would need the very publish capacity that is exhausted. Telemetry counts
them.

:class:`RequestQueue` is a mixin of :class:`~.service.InferenceService`: the service owns the
state (set up in its ``__init__``) and the request handling (``handle``, ``_error``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, NamedTuple

from .messaging import Messaging
from .request_parsing import _dumps, _request_id
from .settings import Settings
from .telemetry import Telemetry

#: How often rejected IoT requests are answered, together in one message.
REJECTION_FLUSH_S = 0.1
#: AWS IoT Core's largest message: results and rejection messages must fit in it.
IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024

# named as before this module was split out of service.py, so log records read the same
log = logging.getLogger(f"{__package__}.service")


class _Job(NamedTuple):
    """One admitted request: where it came from, its bytes, when it arrived."""

    channel: str  # "iot" or "local"
    payload: bytes
    arrived: float  # time.perf_counter()


class RequestQueue:
    """Admission, the worker and the IoT publish window of the inference service."""

    # set by InferenceService.__init__
    messaging: Messaging
    settings: Settings
    telemetry: Telemetry
    _stop: threading.Event
    _cond: threading.Condition
    _queue: deque[_Job]
    _inflight: int  # IoT publishes handed to the nucleus and not yet acknowledged
    _busy: bool  # a request is being handled (by the worker, or inline)
    _waiting_to_publish: bool  # the worker waits for a publish slot: THROTTLED
    _rejections: list[dict[str, Any]]  # IoT rejections until the next flush

    # provided by InferenceService
    def handle(self, payload: bytes, *, queued_ms: float = 0.0, max_result_bytes: int | None = None) -> bytes:
        raise NotImplementedError

    def _error(self, request_id: Any, code: str, message: str) -> dict[str, Any]:
        raise NotImplementedError

    # -- admission ------------------------------------------------------------------------------
    def _admit(self, channel: str, payload: bytes) -> None:
        """Answer the request now when idle, else queue it, or reject it when the queue is full.

        Idle (nothing queued or being handled, a publish slot free), an IoT request is handled on
        the caller's thread, as before the queue existed: no hand-off to the worker on the way.
        A local request always goes to the worker: handled on the IPC thread, the thread would
        read no further message until it was done, so a requester sending faster than the device
        answers filled the sockets instead of this queue, never met ``BUSY``, and its latency grew
        without bound (measured: p99 73-463 ms at 2,000 req/s). IoT requests are held to 100/s
        per connection and their publish window sends them to the queue when results back up.
        """
        job = _Job(channel, payload, time.perf_counter())
        with self._cond:
            stopping = self._stop.is_set()
            idle = not self._queue and not self._busy and channel == "iot"
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
                # only the worker waits on this, and only for a queued request (or the stop): an
                # idle worker woken after every inline request cost a thread switch each time
                if self._queue or self._stop.is_set():
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
            if self._waiting_to_publish:  # the one waiter for a slot in the window
                self._cond.notify_all()
        if error is not None:
            self.telemetry.publish_failed()
            log.warning("publishing a result failed: %s", error)
