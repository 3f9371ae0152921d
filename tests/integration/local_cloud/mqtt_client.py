"""A tiny synchronous paho MQTT5 client over mTLS, for tests only."""

from __future__ import annotations

import json
import queue
import ssl
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


class MqttTestClient:
    """Connect with a certificate; publish QoS1 and see the broker's reason code; collect messages."""

    def __init__(self, host: str, port: int, ca: Path, cert: Path, key: Path, client_id: str) -> None:
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._acks: dict[int, queue.Queue[int]] = {}
        self._suback: queue.Queue[list[int]] = queue.Queue()
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set(
            ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._suback.put([int(r.value) for r in rcs])
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._connected.wait(5):
            raise TimeoutError("MQTT connect timed out")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload: Any = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload
        self.messages.put((msg.topic, payload))

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Properties) -> None:
        self._acks.setdefault(mid, queue.Queue()).put(int(rc.value))

    def publish(self, topic: str, payload: Any, timeout: float = 5) -> int:
        """Publish QoS1 and return the PUBACK reason code (0 ok, 135 not authorized)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic, data, qos=1)
        return self._acks.setdefault(info.mid, queue.Queue()).get(timeout=timeout)

    def subscribe(self, topic: str, timeout: float = 5) -> int:
        """Subscribe QoS1; returns the granted QoS or the refusal reason code (>= 128)."""
        self.client.subscribe(topic, qos=1)
        return self._suback.get(timeout=timeout)[0]

    def wait_for(self, topic_suffix: str, timeout: float = 10) -> Any:
        """Next message whose topic ends with ``topic_suffix`` (others are dropped)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no message on *{topic_suffix}")
            topic, payload = self.messages.get(timeout=remaining)
            if topic.endswith(topic_suffix):
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
