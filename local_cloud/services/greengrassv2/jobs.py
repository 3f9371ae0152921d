"""The IoT Jobs MQTT transport of the control plane: request topics in, answers out.

The control plane connects to the broker with its own privileged identity and serves the jobs
device API as IoT Core does (docs/contracts.md §4): a request on a topic below
``$aws/things/{thing}/jobs/`` is answered on that topic plus ``/accepted`` or ``/rejected``, with
the request's ``clientToken`` echoed and refusals in the protocol's ErrorResponse shape; and
``notify-next`` is published whenever what a device should do next changes. Fleet-status reports
(``.../greengrassv2/health/json``) are passed on. Deciding anything is the data plane's job
(``dataplane.py``); this module parses, routes and publishes. A ticker thread drives rollouts and
in-progress timeouts (``jobrules.advance``), since nothing else would wake up when a minute
passes or a device falls silent; it ticks twenty times a local "minute", at most once a second.

Requests are handled in batches by one worker thread (paho's network thread only queues them):
what a batch changes is written once (``store.SaveOnce``), then its answers and notify-next
messages go out, so nothing is acknowledged before it is durable and a thousand devices reporting
at once do not cost a thousand state-file writes. One worker keeps each device's requests in order.
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.exceptions import JobsError

LOG = logging.getLogger(__name__)

SUBSCRIPTIONS = (
    "$aws/things/+/jobs/+/get",  # DescribeJobExecution, $next included
    "$aws/things/+/jobs/get",  # GetPendingJobExecutions
    "$aws/things/+/jobs/start-next",  # StartNextPendingJobExecution
    "$aws/things/+/jobs/+/update",  # UpdateJobExecution
    "$aws/things/+/greengrassv2/health/json",  # fleet status
)

#: An operation takes the parsed request and returns the accepted answer's members and the
#: things to send notify-next once that answer is out.
Operation = Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]]
#: at most this many requests share one state-file write
BATCH = 256


def parse_request(raw: bytes) -> dict[str, Any]:
    """A request payload: a JSON object (an empty payload is an empty request)."""
    try:
        request = json.loads(raw or b"{}")
    except ValueError as exc:
        raise JobsError("InvalidJson", f"the request is not valid JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise JobsError("InvalidRequest", "the request must be a JSON object")
    return request


def _optional(request: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = request.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise JobsError("InvalidRequest", f"{key} must be a {kind.__name__}")
    return value


class JobsTransport:
    """The control plane's MQTT connection and the jobs topics it serves."""

    def __init__(self, plane: JobsDataPlane) -> None:
        self.plane = plane
        self.client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        # what the batch being handled will publish once it is durable, and who to notify; one
        # batch at a time (the worker's, or a test's ``route``)
        self._batch_lock = threading.Lock()
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._to_notify: list[str] = []

    # -- connection ----------------------------------------------------------------------------
    def connect(self, host: str, port: int, ca: str, cert: str, key: str, client_id: str) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(0.1, 2)
        client.connect(host, port)
        client.loop_start()
        self.client = client
        if not self._connected.wait(5):
            LOG.warning("control plane could not connect to the MQTT broker yet")
        threading.Thread(target=self._tick, daemon=True, name="gg-jobs-ticker").start()
        threading.Thread(target=self._work, daemon=True, name="gg-jobs-requests").start()

    def close(self) -> None:
        self._stop.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        options = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([(topic, options) for topic in SUBSCRIPTIONS])
        self._connected.set()

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.publish(topic, json.dumps(payload), qos=1)

    # -- what a device should do next ----------------------------------------------------------
    def notify(self, things: Iterable[str]) -> None:
        """NextJobExecutionChanged: the execution each thing should run next, or none."""
        for thing in things:
            execution = self.plane.next_execution(thing)
            message: dict[str, Any] = {"timestamp": int(time.time())}
            if execution is not None:
                message["execution"] = execution
            self._publish(f"$aws/things/{thing}/jobs/notify-next", message)

    def tick_interval(self) -> float:
        """Twenty ticks a local minute (a rollout's minute boundary is seen within 5 %), at most
        one a second, at least 20 ms apart."""
        return min(1.0, max(0.02, self.plane.backend.minute_s() / 20))

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_interval()):
            try:
                self.notify(self.plane.advance())
            except Exception:
                LOG.exception("job rollouts and timeouts failed")

    # -- requests ------------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, msg.payload))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                batch = [self._inbox.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(batch) < BATCH:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self.route_batch(batch)
            except Exception:
                LOG.exception("could not handle a batch of %d requests", len(batch))

    def route(self, topic: str, raw: bytes) -> None:
        """Handle one incoming message (public so tests can drive it directly)."""
        self.route_batch([(topic, raw)])

    def route_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Handle messages in order, save once, then publish their answers and notify-next."""
        with self._batch_lock:
            self._outbox, self._to_notify = [], []
            with self.plane.backend.saving_once():
                for topic, raw in messages:
                    try:
                        self._route_one(topic, raw)
                    except Exception:
                        LOG.exception("could not handle %s", topic)
            outbox, notify = self._outbox, list(dict.fromkeys(self._to_notify))
            self._outbox, self._to_notify = [], []
        for reply, answer in outbox:
            self._publish(reply, answer)
        self.notify(notify)

    def _route_one(self, topic: str, raw: bytes) -> None:
        parts = topic.split("/")
        thing, rest = parts[2], parts[3:]
        match rest:
            case ["jobs", job_id, "get"]:
                self._serve(topic, raw, lambda r: self._describe(thing, job_id, r))
            case ["jobs", "get"]:
                self._serve(topic, raw, lambda r: (self.plane.pending_executions(thing), []))
            case ["jobs", "start-next"]:
                self._serve(topic, raw, lambda r: self._start_next(thing, r))
            case ["jobs", job_id, "update"]:
                self._serve(topic, raw, lambda r: self._update(thing, job_id, r))
            case ["greengrassv2", "health", "json"]:
                try:
                    report = parse_request(raw)
                except JobsError:
                    report = {}  # still a sign of life
                self.plane.report_health(thing, report)

    def _serve(self, topic: str, raw: bytes, operation: Operation) -> None:
        """Answer on ``/accepted`` or ``/rejected``, echoing clientToken; then notify-next."""
        token: Any = None
        notify: list[str] = []
        try:
            request = parse_request(raw)
            token = request.get("clientToken")
            members, notify = operation(request)
            reply, answer = f"{topic}/accepted", {"timestamp": int(time.time()), **members}
        except JobsError as exc:
            reply, answer = f"{topic}/rejected", exc.to_payload(int(time.time()))
        if token:
            answer["clientToken"] = token
        self._outbox.append((reply, answer))
        self._to_notify += notify

    def _describe(self, thing: str, job_id: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        include = _optional(request, "includeJobDocument", bool, True)
        execution = self.plane.describe_execution(thing, job_id, include)
        return ({"execution": execution} if execution is not None else {}), []

    def _start_next(self, thing: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        details = _optional(request, "statusDetails", dict)
        execution = self.plane.start_next(thing, details)
        return ({"execution": execution} if execution is not None else {}), []

    def _update(self, thing: str, job_id: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        status = str(request.get("status", ""))
        answer, aborted = self.plane.report(
            thing,
            job_id,
            status,
            details=_optional(request, "statusDetails", dict),
            expected_version=_optional(request, "expectedVersion", int),
            include_document=bool(_optional(request, "includeJobDocument", bool, False)),
        )
        # a finished execution frees the device for its next one; an abort tells everyone concerned
        return answer, sorted({*aborted, *([] if status == "IN_PROGRESS" else [thing])})
