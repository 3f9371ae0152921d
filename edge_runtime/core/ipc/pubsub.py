"""Local pub/sub between components: PublishToTopic and SubscribeToTopic.

Subscriptions take MQTT wildcards; ``RECEIVE_MESSAGES_FROM_OTHERS`` drops the subscriber's own
messages (the nucleus behaviour), ``RECEIVE_ALL_MESSAGES`` (default) keeps them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..topics import matches
from .auth import Authorizer
from .exceptions import InvalidArgumentsError
from .server import Handler, Stream

SERVICE = "aws.greengrass.ipc.pubsub"
RECEIVE_MODES = ("RECEIVE_ALL_MESSAGES", "RECEIVE_MESSAGES_FROM_OTHERS")


@dataclass(eq=False)
class _Subscription:
    topic_filter: str
    stream: Stream
    receive_mode: str


class LocalPubSub:
    """In-process topic router between IPC streams."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[_Subscription] = []

    def subscribe(self, topic_filter: str, stream: Stream, receive_mode: str) -> None:
        sub = _Subscription(topic_filter, stream, receive_mode)
        with self._lock:
            self._subs.append(sub)

        def _remove() -> None:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

        stream.on_close(_remove)

    def publish(self, topic: str, source: str, message: dict[str, Any]) -> int:
        """Deliver ``message`` (``{"jsonMessage": ...}`` or ``{"binaryMessage": ...}``); returns receivers."""
        with self._lock:
            targets = [s for s in self._subs if matches(s.topic_filter, topic)]
        sent = 0
        for sub in targets:
            if sub.receive_mode == "RECEIVE_MESSAGES_FROM_OTHERS" and sub.stream.component == source:
                continue
            kind, inner = next(iter(message.items()))
            event = {kind: {**inner, "context": {"topic": topic}}}
            sub.stream.event("SubscriptionResponseMessage", event)
            sent += 1
        return sent


def handlers(pubsub: LocalPubSub, authorizer: Authorizer) -> dict[str, Handler]:
    """PublishToTopic / SubscribeToTopic, each checking the caller's pubsub policy."""

    def publish_to_topic(stream: Stream, req: dict[str, Any]) -> None:
        topic = req.get("topic")
        message = req.get("publishMessage") or {}
        if not topic or not isinstance(topic, str):
            raise InvalidArgumentsError("topic is required")
        kinds = [k for k in ("jsonMessage", "binaryMessage") if k in message]
        if len(kinds) != 1:
            raise InvalidArgumentsError("publishMessage needs exactly one of jsonMessage, binaryMessage")
        authorizer.check(stream.component, SERVICE, "aws.greengrass#PublishToTopic", topic)
        inner = {k: v for k, v in message[kinds[0]].items() if k != "context"}
        stream.respond("PublishToTopicResponse", {})
        pubsub.publish(topic, stream.component, {kinds[0]: inner})

    def subscribe_to_topic(stream: Stream, req: dict[str, Any]) -> None:
        topic = req.get("topic")
        mode = req.get("receiveMode") or "RECEIVE_ALL_MESSAGES"
        if not topic or not isinstance(topic, str):
            raise InvalidArgumentsError("topic is required")
        if mode not in RECEIVE_MODES:
            raise InvalidArgumentsError(f"receiveMode must be one of {RECEIVE_MODES}")
        authorizer.check(stream.component, SERVICE, "aws.greengrass#SubscribeToTopic", topic)
        pubsub.subscribe(topic, stream, mode)
        stream.respond("SubscribeToTopicResponse", {"topicName": topic}, terminate=False)

    return {"PublishToTopic": publish_to_topic, "SubscribeToTopic": subscribe_to_topic}
