"""The core's one MQTT5 connection to IoT Core (awscrt, mTLS), shared by jobs, status and IPC.

Subscriptions are reference-counted per topic filter, so many IPC streams on one filter cost one
broker subscription; they are restored after a reconnect (the session is clean).

Flow control ("aws-iot-core", as ``mlops-edge run`` starts devices): what the device *publishes*
is held to AWS IoT Core's per-connection limits, 100 PUBLISH/s and 512 KiB/s, by
:class:`PublishThrottle` (token buckets with a second of burst), and what waits for it is bounded
like the nucleus's spooler (2.5 MiB; past it a publish fails at once instead of queueing); a
message IoT Core would refuse (over 128 KiB, a topic over 256 bytes or 7 slashes) fails at once. It is
not awscrt's ``AWS_IOT_CORE_DEFAULTS``: measured, that throttle also holds back the PUBACKs the
device owes for the requests it receives, so a device receiving 90 requests/s could publish only
~10/s more, its unacknowledged requests queued in the broker (which drops QoS 1 messages beyond
its queue: the silent losses of issue 13), and it answered ~63 requests/s at best.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from itertools import count
from typing import Any, NamedTuple

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from .crt_threads import keep_thread_state
from .identity import Identity
from .topics import matches

log = logging.getLogger(__name__)

Callback = Callable[[str, bytes], None]

#: AWS IoT Core's per-connection limits on what a client publishes.
IOT_CORE_PUBLISH_PER_S = 100.0
IOT_CORE_BYTES_PER_S = 512 * 1024
#: The nucleus's default spooler size (``mqtt.spooler.maxSizeInBytes``).
SPOOL_BYTES = 2_621_440
#: AWS IoT Core's limits on one message (the validation half of awscrt's AWS_IOT_CORE_DEFAULTS).
IOT_CORE_MAX_PAYLOAD_BYTES = 128 * 1024
IOT_CORE_MAX_TOPIC_BYTES = 256
IOT_CORE_MAX_TOPIC_SLASHES = 7  # not counting the 3 of a Basic Ingest prefix ($aws/rules/<rule>/)


class SpoolFull(RuntimeError):
    """The publish spool is full: the device is publishing faster than IoT Core accepts."""


class IotCoreLimitExceeded(ValueError):
    """A message IoT Core would refuse (payload over 128 KiB, topic too long or too deep)."""


def check_iot_core_limits(topic: str, payload: bytes) -> None:
    """Raise :class:`IotCoreLimitExceeded` for what AWS IoT Core would refuse to accept."""
    if len(payload) > IOT_CORE_MAX_PAYLOAD_BYTES:
        raise IotCoreLimitExceeded(
            f"publish to {topic} refused: {len(payload)} bytes, over IoT Core's message limit of "
            f"{IOT_CORE_MAX_PAYLOAD_BYTES} bytes"
        )
    if len(topic.encode()) > IOT_CORE_MAX_TOPIC_BYTES:
        raise IotCoreLimitExceeded(f"publish refused: topic longer than {IOT_CORE_MAX_TOPIC_BYTES} bytes")
    slashes = topic.count("/") - (3 if topic.lower().startswith("$aws/rules/") else 0)  # Basic Ingest
    if slashes > IOT_CORE_MAX_TOPIC_SLASHES:
        raise IotCoreLimitExceeded(
            f"publish to {topic} refused: more than {IOT_CORE_MAX_TOPIC_SLASHES} '/' in the topic"
        )


class _TokenBucket:
    """``rate`` tokens a second, at most ``rate`` banked (a second of burst)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()

    def wait_for(self, tokens: float) -> float:
        """Seconds until ``tokens`` are there (0: take them now)."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        needed = min(tokens, self.rate)  # one message bigger than a second's budget still goes
        return 0.0 if self.tokens >= needed else (needed - self.tokens) / self.rate

    def take(self, tokens: float) -> None:
        self.tokens -= min(tokens, self.rate)


class _Spooled(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    future: Future


class PublishThrottle:
    """Sends publishes no faster than IoT Core's limits, in order, from a bounded spool.

    ``send(topic, payload, qos)`` does the real publish and returns its future; ``submit`` returns
    a future of the same result, or one failed with :class:`SpoolFull` when the spool is full.
    """

    def __init__(
        self,
        send: Callable[[str, bytes, int], Future],
        *,
        publish_per_s: float = IOT_CORE_PUBLISH_PER_S,
        bytes_per_s: float = IOT_CORE_BYTES_PER_S,
        spool_bytes: int = SPOOL_BYTES,
    ) -> None:
        self._send = send
        self._publishes = _TokenBucket(publish_per_s)
        self._bytes = _TokenBucket(bytes_per_s)
        self._spool_bytes = spool_bytes
        self._queue: deque[_Spooled] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._forwarding = False  # the sender thread is handing an item to the connection
        self._thread = threading.Thread(target=self._run, name="iot-publish-throttle", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def submit(self, topic: str, payload: bytes, qos: int) -> Future:
        future: Future = Future()
        item = _Spooled(topic, payload, qos, future)
        try:
            check_iot_core_limits(topic, payload)
        except IotCoreLimitExceeded as exc:
            future.set_exception(exc)
            return future
        with self._cond:
            if self._stopped:
                future.set_exception(ConnectionError("the IoT Core connection is stopped"))
                return future
            if not self._queue and not self._forwarding and self._take(item):
                send_now = True  # under the limits and nothing waiting: no hop to the sender thread
            elif self._queue and self._queued_bytes + len(payload) > self._spool_bytes:
                future.set_exception(
                    SpoolFull(
                        f"publish to {topic} refused: {self._queued_bytes} bytes already wait for "
                        f"IoT Core's limit of {self._publishes.rate:g} publishes/s (spool {self._spool_bytes} bytes)"
                    )
                )
                return future
            else:
                send_now = False
                self._queue.append(item)
                self._queued_bytes += len(payload)
                self._cond.notify_all()
        if send_now:
            self._forward(item)
        return future

    def _take(self, item: _Spooled) -> bool:
        """Take the tokens ``item`` needs if both buckets have them now (caller holds the lock)."""
        if self._publishes.wait_for(1) > 0 or self._bytes.wait_for(len(item.payload)) > 0:
            return False
        self._publishes.take(1)
        self._bytes.take(len(item.payload))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            pending = list(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
        for item in pending:
            if not item.future.done():
                item.future.set_exception(ConnectionError("the IoT Core connection stopped"))
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._forwarding = False
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                item = self._queue[0]
                delay = max(self._publishes.wait_for(1), self._bytes.wait_for(len(item.payload)))
                if delay > 0:
                    self._cond.wait(delay)  # woken early only to stop; then look again
                    continue
                self._take(item)
                self._queue.popleft()
                self._queued_bytes -= len(item.payload)
                self._forwarding = True  # until forwarded: a publish submitted now must queue
            self._forward(item)

    def _forward(self, item: _Spooled) -> None:
        try:
            sent = self._send(item.topic, item.payload, item.qos)
        except Exception as exc:
            item.future.set_exception(exc)
            return

        def _relay(done: Future) -> None:
            exc = done.exception()
            if exc is not None:
                item.future.set_exception(exc)
            else:
                item.future.set_result(done.result())

        sent.add_done_callback(_relay)


class IotConnection:
    """Publish/subscribe on IoT Core as the device's thing."""

    def __init__(self, identity: Identity, *, client_id: str | None = None) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self._subs: dict[int, tuple[str, Callback]] = {}
        self._filters: dict[str, int] = {}
        self._ids = count(1)
        self._connected = threading.Event()
        self._on_connect: list[Callable[[], None]] = []
        kwargs: dict[str, Any] = {
            "endpoint": identity.host,
            "port": identity.port,
            "cert_filepath": str(identity.cert_path),
            "pri_key_filepath": str(identity.key_path),
            "client_id": client_id or identity.thing_name,
            "clean_session": True,
            "keep_alive_interval_sec": 30,
            "on_publish_received": self._on_publish,
            "on_lifecycle_connection_success": self._on_success,
            "on_lifecycle_disconnection": lambda _d: self._connected.clear(),
            "min_reconnect_delay_ms": 200,
            "max_reconnect_delay_ms": 5000,
            # IoT Core's limits are applied by PublishThrottle (see the module's docstring)
            "extended_validation_and_flow_control_options": mqtt5.ExtendedValidationAndFlowControlOptions.NONE,
        }
        if identity.ca_path:
            kwargs["ca_filepath"] = str(identity.ca_path)
        self._client = mqtt5_client_builder.mtls_from_path(**kwargs)
        self._throttle = PublishThrottle(self._send) if identity.flow_control != "none" else None

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after every (re)connection, e.g. to ask for pending jobs."""
        self._on_connect.append(callback)

    def start(self, timeout: float = 15.0) -> None:
        self._client.start()
        if not self._connected.wait(timeout):
            raise ConnectionError(
                f"no MQTT connection to {self.identity.host}:{self.identity.port} in {timeout}s"
            )

    def stop(self) -> None:
        if self._throttle is not None:
            self._throttle.stop()
        with contextlib.suppress(Exception):
            self._client.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def client(self) -> mqtt5.Client:
        """The awscrt client itself, for AWS's service clients (``awsiot.iotjobs``) that take one."""
        return self._client

    def _on_success(self, _data: Any) -> None:
        _set_nodelay(self.identity.host, self.identity.port)
        with self._lock:
            filters = list(self._filters)
        for topic_filter in filters:  # clean session: subscriptions are gone after a reconnect
            self._client.subscribe(self._sub_packet(topic_filter))
        self._connected.set()
        for callback in self._on_connect:
            with contextlib.suppress(Exception):
                callback()

    def _on_publish(self, data: Any) -> None:
        keep_thread_state()  # awscrt's event-loop thread: one thread state for its life
        packet = data.publish_packet
        topic = packet.topic
        payload = bytes(packet.payload or b"")
        with self._lock:
            targets = [cb for f, cb in self._subs.values() if matches(f, topic)]
        for callback in targets:
            try:
                callback(topic, payload)
            except Exception:
                log.exception("subscriber of %s failed", topic)

    @staticmethod
    def _sub_packet(topic_filter: str) -> mqtt5.SubscribePacket:
        return mqtt5.SubscribePacket(
            subscriptions=[mqtt5.Subscription(topic_filter=topic_filter, qos=mqtt5.QoS.AT_LEAST_ONCE)]
        )

    def subscribe(self, topic_filter: str, callback: Callback, timeout: float = 10.0) -> int:
        """Subscribe (waits for the SUBACK on first use of a filter); returns a handle."""
        handle = next(self._ids)
        with self._lock:
            self._subs[handle] = (topic_filter, callback)
            first = self._filters.get(topic_filter, 0) == 0
            self._filters[topic_filter] = self._filters.get(topic_filter, 0) + 1
        if first:
            suback = self._client.subscribe(self._sub_packet(topic_filter)).result(timeout)
            codes = [int(c) for c in getattr(suback, "reason_codes", [])]
            if codes and codes[0] >= 0x80:
                self.unsubscribe(handle)
                raise PermissionError(f"broker refused subscription to {topic_filter} (reason {codes[0]:#x})")
        return handle

    def unsubscribe(self, handle: int) -> None:
        with self._lock:
            entry = self._subs.pop(handle, None)
            if entry is None:
                return
            topic_filter = entry[0]
            self._filters[topic_filter] -= 1
            last = self._filters[topic_filter] == 0
            if last:
                del self._filters[topic_filter]
        if last:
            with contextlib.suppress(Exception):
                self._client.unsubscribe(mqtt5.UnsubscribePacket(topic_filters=[topic_filter]))

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        on_done: Callable[[Exception | None], None] | None = None,
    ) -> Future:
        """Publish; ``on_done(error or None)`` runs when the broker acknowledged (QoS 1).

        With flow control the publish first waits its turn under IoT Core's limits; a full spool
        fails it at once (:class:`SpoolFull`).
        """
        if self._throttle is not None:
            future = self._throttle.submit(topic, payload, qos)
        else:
            future = self._send(topic, payload, qos)
        if on_done is not None:

            def _done(f: Future) -> None:
                exc = f.exception()
                if exc is None:
                    result = f.result()
                    code = getattr(getattr(result, "puback", None), "reason_code", 0)
                    if code and int(code) >= 0x80:
                        exc = PermissionError(f"broker refused publish to {topic} (reason {int(code):#x})")
                on_done(exc)

            future.add_done_callback(_done)
        return future

    def _send(self, topic: str, payload: bytes, qos: int) -> Future:
        return self._client.publish(mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos)))


def _set_nodelay(host: str, port: int) -> None:
    """Turn Nagle off on this process's sockets to the broker (Linux; best effort).

    awscrt exposes no TCP_NODELAY option. With Nagle on, a result PUBLISH written right after the
    PUBACK of the request waits for the broker's delayed ACK (40 ms on Linux) — per request.
    """
    try:
        peers = {info[4][:2] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in fds:
        try:
            fd = int(name)
            sock = socket.socket(fileno=os.dup(fd))
        except (OSError, ValueError):
            continue
        try:
            tcp = sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6)
            if tcp and sock.getpeername()[:2] in peers:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        finally:
            sock.close()
