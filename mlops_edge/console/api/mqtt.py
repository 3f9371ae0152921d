"""``/api/mqtt``: the MQTT test client — subscribe, unsubscribe, publish, clear and a session's live stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.routing import Route

from mlops_edge.console.api.common import api, body, event_stream, int_or
from mlops_edge.console.executions import sse
from mlops_edge.console.mqtt_hub import MqttHub

__all__ = ["routes"]


def routes(hub: MqttHub) -> list[Route]:
    async def mqtt_subscribe(request: Request) -> Any:
        doc = await body(request)
        session = hub.session(str(doc.get("session", "")))
        topics = await to_thread.run_sync(session.subscribe, str(doc.get("topic", "")))
        return {"topics": topics}

    async def mqtt_unsubscribe(request: Request) -> Any:
        doc = await body(request)
        session = hub.session(str(doc.get("session", "")))
        topics = await to_thread.run_sync(session.unsubscribe, str(doc.get("topic", "")))
        return {"topics": topics}

    async def mqtt_publish(request: Request) -> Any:
        doc = await body(request)
        payload = doc.get("payload", "")
        text = payload if isinstance(payload, str) else json.dumps(payload)
        topic = str(doc.get("topic", ""))
        await to_thread.run_sync(hub.publish, topic, text)
        return {"published": topic}

    async def mqtt_clear(request: Request) -> Any:
        doc = await body(request)
        hub.session(str(doc.get("session", ""))).log.clear()
        return {"cleared": True}

    async def mqtt_stream(request: Request) -> Any:
        session = hub.session(request.query_params.get("session", ""))
        after = int_or(request.headers.get("last-event-id"), 0)

        async def events() -> AsyncIterator[str]:
            session.streams += 1
            try:
                yield sse({"topics": session.topics}, event="topics")
                async for batch in session.log.follow(after):
                    if await request.is_disconnected():
                        return
                    if batch is None:
                        yield ": keep-alive\n\n"
                        continue
                    yield sse({"messages": [m.to_json() for m in batch]}, event="messages", id=batch[-1].seq)
            finally:
                session.streams -= 1

        return event_stream(events())

    return [
        Route("/api/mqtt/subscribe", api(mqtt_subscribe), methods=["POST"]),
        Route("/api/mqtt/unsubscribe", api(mqtt_unsubscribe), methods=["POST"]),
        Route("/api/mqtt/publish", api(mqtt_publish), methods=["POST"]),
        Route("/api/mqtt/clear", api(mqtt_clear), methods=["POST"]),
        Route("/api/mqtt/stream", api(mqtt_stream)),
    ]
