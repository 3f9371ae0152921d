"""The MQTT side of the console: the test client's sessions and the fleet's telemetry.

The browser never holds a device key. The server connects with the MQTT settings `mlops-edge mqtt`
uses (:meth:`pipeline.mqtt.MqttSettings.from_env`) and streams what arrives to the page: one
connection per page's subscription set (a topic added is subscribed on it; a topic removed means a
new connection for the remaining set, so nothing keeps arriving for it), and one shared connection
for telemetry (``edge/+/telemetry``) and for publishing.

paho delivers on its own thread; :class:`MessageLog` takes messages there and wakes the event loop
with ``call_soon_threadsafe``, so a stream never polls and never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from mlops_edge.console.backend import ConsoleError

__all__ = ["Message", "MessageLog", "MqttHub", "check_topic", "check_topic_filter"]

#: Messages a page's log keeps (older ones are dropped; the page shows newest first).
LOG_SIZE = 2000
TELEMETRY_FILTER = "edge/+/telemetry"
#: Request ids VerifyOnDevice gives its golden requests (``verify-<thing>-<run>-<n>``).
VERIFICATION_PREFIX = "verify-"


def check_topic_filter(topic: str) -> str:
    """An MQTT topic filter, or ConsoleError saying what is wrong with it."""
    if not topic or len(topic.encode()) > 65535 or "\x00" in topic:
        raise ConsoleError("a topic filter is 1 to 65535 bytes and has no NUL character")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ConsoleError(f"'#' must be a whole level and the last one: {topic!r}")
        if "+" in level and level != "+":
            raise ConsoleError(f"'+' must be a whole level: {topic!r}")
    return topic


def check_topic(topic: str) -> str:
    """A topic to publish on: no wildcards."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ConsoleError("publish to a topic name without wildcards (+, #)")
    return topic


@dataclass(frozen=True)
class Message:
    seq: int
    topic: str
    received: float
    payload: str
    json: Any
    request_id: str | None
    verification: bool

    @classmethod
    def parse(cls, seq: int, topic: str, payload: bytes) -> Message:
        text = payload.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        rid = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
        verification = bool(rid and rid.startswith(VERIFICATION_PREFIX))
        return cls(seq, topic, time.time(), text, body, rid, verification)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "topic": self.topic,
            "received": self.received,
            "payload": self.payload,
            "json": self.json,
            "request_id": self.request_id,
            "verification": self.verification,
        }


class MessageLog:
    """A bounded, numbered message list that wakes async readers from any thread."""

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._messages: deque[Message] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._seq = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def add(self, topic: str, payload: bytes) -> Message:
        with self._lock:
            self._seq += 1
            message = Message.parse(self._seq, topic, payload)
            self._messages.append(message)
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # a loop that has closed
                loop.call_soon_threadsafe(event.set)
        return message

    def since(self, seq: int) -> list[Message]:
        with self._lock:
            return [m for m in self._messages if m.seq > seq]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    async def follow(self, after: int, *, keepalive_s: float = 15.0) -> AsyncIterator[list[Message] | None]:
        """Yields lists of new messages as they come (``None`` after ``keepalive_s`` of quiet)."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.add(waiter)
        try:
            while True:
                fresh = self.since(after)
                if fresh:
                    after = fresh[-1].seq
                    yield fresh
                    continue
                try:
                    await asyncio.wait_for(event.wait(), keepalive_s)
                except TimeoutError:
                    yield None
                event.clear()
        finally:
            with self._lock:
                self._waiters.discard(waiter)


Connect = Callable[[], Any]


def _connect_from_env() -> Any:
    from pipeline.mqtt import MqttClient, MqttError, MqttSettings

    try:
        return MqttClient(MqttSettings.from_env())
    except MqttError as exc:
        raise ConsoleError(str(exc), 503) from exc


class Session:
    """One page's subscriptions, over one connection per subscription set."""

    def __init__(self, session_id: str, connect: Connect) -> None:
        self.id = session_id
        self.topics: list[str] = []
        self.log = MessageLog()
        self.last_seen = time.monotonic()
        self.streams = 0
        self._connect = connect
        self._client: Any = None
        self._lock = threading.Lock()

    def _on_message(self, topic: str, payload: bytes) -> None:
        self.log.add(topic, payload)

    def subscribe(self, topic: str) -> list[str]:
        topic = check_topic_filter(topic)
        with self._lock:
            if topic in self.topics:
                return list(self.topics)
            if self._client is None:
                self._client = self._connect()
            self._subscribe(self._client, topic)
            self.topics.append(topic)
            return list(self.topics)

    def _subscribe(self, client: Any, topic: str) -> None:
        from pipeline.mqtt import MqttError

        try:
            client.subscribe(topic, self._on_message)
        except MqttError as exc:
            raise ConsoleError(str(exc), 502) from exc

    def unsubscribe(self, topic: str) -> list[str]:
        with self._lock:
            remaining = [t for t in self.topics if t != topic]
            old, self._client = self._client, None
            if remaining:
                client = self._connect()
                for t in remaining:
                    self._subscribe(client, t)
                self._client = client
            self.topics = remaining
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        return list(self.topics)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self.topics = []
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


class MqttHub:
    """Every page's session, the shared publisher and the fleet's telemetry."""

    #: A session with no open stream for this long is closed (a reload reconnects well within it).
    IDLE_S = 120.0

    def __init__(self, connect: Connect = _connect_from_env) -> None:
        self._connect = connect
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._shared: Any = None
        self._shared_lock = threading.Lock()
        self.telemetry = MessageLog(size=5000)
        self.latest: dict[str, dict[str, Any]] = {}
        self._telemetry_error: str | None = None
        self._telemetry_started = False
        self._telemetry_lock = threading.Lock()

    def session(self, session_id: str) -> Session:
        if not session_id or len(session_id) > 64 or not session_id.replace("-", "").isalnum():
            raise ConsoleError("a session id is 1 to 64 letters, digits and dashes")
        with self._lock:
            self._reap()
            session = self._sessions.get(session_id)
            if session is None:
                session = self._sessions[session_id] = Session(session_id, self._connect)
            session.last_seen = time.monotonic()
            return session

    def _reap(self) -> None:
        now = time.monotonic()
        for sid, session in list(self._sessions.items()):
            if session.streams == 0 and now - session.last_seen > self.IDLE_S:
                del self._sessions[sid]
                threading.Thread(target=session.close, daemon=True).start()

    def shared(self) -> Any:
        with self._shared_lock:
            if self._shared is None:
                self._shared = self._connect()
            return self._shared

    def publish(self, topic: str, payload: str) -> None:
        from pipeline.mqtt import MqttError

        topic = check_topic(topic)
        try:
            json.loads(payload)
        except ValueError as exc:
            raise ConsoleError(f"the payload is not JSON: {exc}") from exc
        try:
            self.shared().publish(topic, payload.encode())
        except MqttError as exc:
            raise ConsoleError(str(exc), 502) from exc

    # -- telemetry ---------------------------------------------------------------------------------
    def _on_telemetry(self, topic: str, payload: bytes) -> None:
        message = self.telemetry.add(topic, payload)
        if isinstance(message.json, dict):
            thing = str(message.json.get("thing") or topic.split("/")[1])
            self.latest[thing] = {**message.json, "received": message.received}

    def start_telemetry(self) -> str | None:
        """Subscribe to the fleet's telemetry once; returns why it is unavailable, if it is."""
        with self._telemetry_lock:
            if self._telemetry_started:
                return self._telemetry_error
            try:
                self.shared().subscribe(TELEMETRY_FILTER, self._on_telemetry)
                self._telemetry_error = None
                self._telemetry_started = True
            except Exception as exc:  # asked again on the next page load
                self._telemetry_error = f"telemetry unavailable: {exc}"
            return self._telemetry_error

    async def astart_telemetry(self) -> str | None:
        return await to_thread.run_sync(self.start_telemetry)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
        with self._shared_lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            with contextlib.suppress(Exception):
                shared.close()
