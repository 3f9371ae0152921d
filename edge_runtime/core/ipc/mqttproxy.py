"""IoT Core through the core's own MQTT connection: PublishToIoTCore and SubscribeToIoTCore."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from .auth import Authorizer
from .exceptions import InvalidArgumentsError, ServiceError
from .server import Handler, Stream

SERVICE = "aws.greengrass.ipc.mqttproxy"


class IotBridge(Protocol):
    """What the proxy needs from the core's MQTT connection (:class:`~..mqtt.IotConnection`)."""

    def publish(self, topic: str, payload: bytes, qos: int, on_done: Any = None) -> object: ...

    def subscribe(self, topic_filter: str, callback: Any) -> Any: ...

    def unsubscribe(self, handle: Any) -> None: ...


def _qos(value: Any) -> int:
    try:
        qos = int(value if value is not None else 0)
    except (TypeError, ValueError):
        raise InvalidArgumentsError(f"qos must be 0 or 1, got {value!r}") from None
    if qos not in (0, 1):
        raise InvalidArgumentsError(f"qos must be 0 or 1, got {qos}")
    return qos


def handlers(bridge: IotBridge, authorizer: Authorizer) -> dict[str, Handler]:
    """PublishToIoTCore / SubscribeToIoTCore, each checking the caller's mqttproxy policy."""

    def publish_to_iot_core(stream: Stream, req: dict[str, Any]) -> None:
        topic = req.get("topicName")
        if not topic or not isinstance(topic, str):
            raise InvalidArgumentsError("topicName is required")
        qos = _qos(req.get("qos"))
        try:
            payload = base64.b64decode(req.get("payload") or "")
        except (binascii.Error, ValueError):
            raise InvalidArgumentsError("payload is not base64") from None
        authorizer.check(stream.component, SERVICE, "aws.greengrass#PublishToIoTCore", topic)

        def done(error: Exception | None) -> None:
            if error is None:
                stream.respond("PublishToIoTCoreResponse", {})
            else:
                stream.error(ServiceError(f"publish to IoT Core failed: {error}"))

        bridge.publish(topic, payload, qos, on_done=done)

    def subscribe_to_iot_core(stream: Stream, req: dict[str, Any]) -> None:
        topic = req.get("topicName")
        if not topic or not isinstance(topic, str):
            raise InvalidArgumentsError("topicName is required")
        _qos(req.get("qos"))
        authorizer.check(stream.component, SERVICE, "aws.greengrass#SubscribeToIoTCore", topic)

        def deliver(msg_topic: str, payload: bytes) -> None:
            # the event's JSON written directly: base64 needs no escaping, so a request's bytes
            # are not scanned again by json.dumps (the topic still goes through it)
            stream.event_json(
                "IoTCoreMessage",
                b'{"message":{"topicName":%s,"payload":"%s"}}'
                % (json.dumps(msg_topic).encode(), base64.b64encode(payload)),
            )

        handle = bridge.subscribe(topic, deliver)
        stream.on_close(lambda: bridge.unsubscribe(handle))
        stream.respond("SubscribeToIoTCoreResponse", {}, terminate=False)

    return {"PublishToIoTCore": publish_to_iot_core, "SubscribeToIoTCore": subscribe_to_iot_core}
