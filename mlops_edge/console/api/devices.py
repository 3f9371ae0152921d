"""``/api/devices``: the fleet with each device's latest telemetry, and the telemetry as a live stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.routing import Route

from mlops_edge.console.api.common import api, event_stream, int_or
from mlops_edge.console.backend import Backend, ConsoleError
from mlops_edge.console.executions import sse
from mlops_edge.console.mqtt_hub import MqttHub

__all__ = ["routes"]


def routes(backend: Backend, hub: MqttHub) -> list[Route]:
    async def list_devices(request: Request) -> Any:
        fresh = request.query_params.get("fresh") == "1"
        devices = await to_thread.run_sync(lambda: backend.fleet(fresh=fresh))
        problem = await hub.astart_telemetry()
        return {"devices": devices, "telemetry": hub.latest, "telemetry_problem": problem}

    async def stream_telemetry(request: Request) -> Any:
        problem = await hub.astart_telemetry()
        if problem:
            raise ConsoleError(problem, 503)
        after = int_or(request.headers.get("last-event-id"), 0)

        async def events() -> AsyncIterator[str]:
            async for batch in hub.telemetry.follow(after):
                if await request.is_disconnected():
                    return
                if batch is None:
                    yield ": keep-alive\n\n"
                    continue
                docs = [m.json for m in batch if isinstance(m.json, dict)]
                yield sse({"telemetry": docs}, event="telemetry", id=batch[-1].seq)

        return event_stream(events())

    return [
        Route("/api/devices", api(list_devices)),
        Route("/api/devices/telemetry", api(stream_telemetry)),
    ]
