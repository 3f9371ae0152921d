"""The core's one MQTT5 connection to IoT Core (awscrt, mTLS), shared by jobs, status and IPC.

Subscriptions are reference-counted per topic filter, so many IPC streams on one filter cost one
broker subscription; they are restored after a reconnect (the session is clean).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from itertools import count
from typing import Any

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from .identity import Identity
from .topics import matches

log = logging.getLogger(__name__)

Callback = Callable[[str, bytes], None]


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
            "extended_validation_and_flow_control_options": (
                mqtt5.ExtendedValidationAndFlowControlOptions.NONE
                if identity.flow_control == "none"
                else mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS
            ),
        }
        if identity.ca_path:
            kwargs["ca_filepath"] = str(identity.ca_path)
        self._client = mqtt5_client_builder.mtls_from_path(**kwargs)

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
        """Publish; ``on_done(error or None)`` runs when the broker acknowledged (QoS 1)."""
        future = self._client.publish(mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos)))
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
