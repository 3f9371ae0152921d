"""The rules engine's MQTT connection: one subscription per FROM filter of the enabled rules.

It connects with the control plane's privileged identity (a client id under the control plane's
prefix, so it does not take over the jobs transport's session), as IoT's rules engine sees every
message whatever the publisher's policy. ``sync`` subscribes to filters that appeared and
unsubscribes from those no rule uses any more, and waits for the broker's SUBACK, so a rule is live
once the API call that created or enabled it has answered. Messages are handed to one worker
thread (paho's network thread only queues them), which runs the rules in arrival order.

Each filter is subscribed with its own MQTT 5 subscription identifier. mosquitto delivers one copy
per matching subscription when filters overlap, so a copy is handled only by the rules of the
filters its identifiers name: each rule sees a message once. The engine's own republishes are not
delivered back to it (``noLocal``), so a republish cannot loop through the engine.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

LOG = logging.getLogger(__name__)
#: (topic, payload, filters the copy was delivered for (empty: unknown), what ``stamp`` gave
#: when the message arrived)
Handler = Callable[[str, bytes, set[str], Any], None]
SUBACK_WAIT_S = 5.0


class RulesTransport:
    """Subscriptions follow the rules; messages go to ``handler`` on one worker thread."""

    def __init__(self, handler: Handler, stamp: Callable[[], Any] = lambda: None) -> None:
        self.handler = handler
        # taken on paho's thread when a message arrives: the rules as they were then, so a rule
        # disabled after a message arrived still sees it, and one disabled before does not
        self.stamp = stamp
        self.client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inbox: queue.Queue[tuple[str, bytes, set[str], Any]] = queue.Queue()
        self._wanted: set[str] = set()
        self._ids: dict[str, int] = {}  # filter -> subscription identifier
        self._next_id = 1
        self._acks: dict[int, threading.Event] = {}

    def connect(self, host: str, port: int, ca: str, cert: str, key: str, client_id: str) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_ack
        client.on_unsubscribe = self._on_ack
        client.reconnect_delay_set(0.1, 2)
        self.client = client
        client.connect(host, port)
        client.loop_start()
        if not self._connected.wait(5):
            LOG.warning("rules engine could not connect to the MQTT broker yet")
        threading.Thread(target=self._work, daemon=True, name="iot-rules").start()

    def close(self) -> None:
        self._stop.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        if self.client is None:
            raise RuntimeError("the rules engine is not connected to the broker")
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(mqtt.error_string(info.rc))

    # -- subscriptions -------------------------------------------------------------------------
    def sync(self, filters: set[str]) -> None:
        """Subscribe to new filters and drop unused ones; wait (bounded) for the broker's acks."""
        with self._lock:
            added, removed = filters - self._wanted, self._wanted - filters
            self._wanted = set(filters)
            for topic_filter in added:
                self._ids[topic_filter] = self._next_id
                self._next_id += 1
            waits = [self._subscribe(f) for f in sorted(added)]
            waits += [self._unsubscribe(f) for f in sorted(removed)]
            for topic_filter in removed:
                self._ids.pop(topic_filter, None)
        for mid in waits:
            if mid is None:
                continue
            if not self._acks.setdefault(mid, threading.Event()).wait(SUBACK_WAIT_S):
                LOG.warning("rules engine: the broker did not acknowledge a (un)subscribe in time")
            self._acks.pop(mid, None)

    def _subscribe(self, topic_filter: str) -> int | None:
        if self.client is None or not self._connected.is_set():
            return None  # _on_connect subscribes to everything wanted
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = self._ids[topic_filter]
        options = SubscribeOptions(qos=1, noLocal=True)
        rc, mid = self.client.subscribe(topic_filter, options=options, properties=props)
        return mid if rc == mqtt.MQTT_ERR_SUCCESS else None

    def _unsubscribe(self, topic_filter: str) -> int | None:
        if self.client is None or not self._connected.is_set():
            return None
        rc, mid = self.client.unsubscribe(topic_filter)
        return mid if rc == mqtt.MQTT_ERR_SUCCESS else None

    def _on_ack(self, client: mqtt.Client, userdata: Any, mid: int, *rest: Any) -> None:
        # may come before sync() waits for it: the event is kept until sync() has seen it
        self._acks.setdefault(mid, threading.Event()).set()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connected.set()
        with self._lock:
            for topic_filter in sorted(self._wanted):
                self._subscribe(topic_filter)

    # -- messages ------------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ids = getattr(msg.properties, "SubscriptionIdentifier", None) if msg.properties else None
        listed = ids if isinstance(ids, list) else [ids] if ids else []
        with self._lock:
            by_id = {v: k for k, v in self._ids.items()}
        self._inbox.put((msg.topic, msg.payload, {by_id[i] for i in listed if i in by_id}, self.stamp()))

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload, filters, stamped = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.handler(topic, payload, filters, stamped)
            except Exception:
                LOG.exception("rules engine failed on a message on %s", topic)
