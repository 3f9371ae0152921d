"""In-memory test doubles for the inference component (kept here so its artifact ships none)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from inference_component.messaging import Done, Handler, Messaging


class FakeMessaging(Messaging):
    """In-memory messaging for unit tests: records publishes, lets tests inject messages.

    IoT publishes are acknowledged at once, unless ``hold_iot`` is set: then their ``on_done``
    waits for :meth:`release`, as results wait in a nucleus's throttle.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.iot_handlers: dict[str, list[Handler]] = {}
        self.local_handlers: dict[str, list[Handler]] = {}
        self.published: list[tuple[str, str, bytes]] = []  # (channel, topic, payload)
        self.running = False
        self.hold_iot = False
        self._held: list[Done] = []
        self._cond = threading.Condition()

    def subscribe_iot(self, topic: str, handler: Handler) -> None:
        self.iot_handlers.setdefault(topic, []).append(handler)

    def subscribe_local(self, topic: str, handler: Handler) -> None:
        self.local_handlers.setdefault(topic, []).append(handler)

    def publish_iot(self, topic: str, payload: bytes, on_done: Done | None = None) -> None:
        with self._cond:
            self.published.append(("iot", topic, payload))
            self._cond.notify_all()
            if on_done is not None and self.hold_iot:
                self._held.append(on_done)
                return
        if on_done is not None:
            on_done(None)

    def release(self) -> int:
        """Acknowledge every held IoT publish (and stop holding); returns how many there were."""
        with self._cond:
            held, self._held = self._held, []
            self.hold_iot = False
        for on_done in held:
            on_done(None)
        return len(held)

    def publish_local(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self.published.append(("local", topic, payload))
            self._cond.notify_all()

    def configuration(self) -> dict[str, Any]:
        return dict(self.config)

    def report_running(self) -> None:
        self.running = True

    def inject_iot(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` as if IoT Core sent it on ``topic``."""
        for handler in self.iot_handlers.get(topic, []):
            handler(topic, payload)

    def inject_local(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` as if another component published it locally."""
        for handler in self.local_handlers.get(topic, []):
            handler(topic, payload)

    def wait_for(
        self, predicate: Callable[[list[tuple[str, str, bytes]]], bool], timeout: float = 5.0
    ) -> bool:
        """Block until ``predicate(published)`` holds (telemetry is published from a thread)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.published), timeout)
