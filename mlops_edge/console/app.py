"""``create_app``: the console's routes — pages, the JSON API under ``/api``, live streams, static files.

Pages are plain URLs (``/executions``, ``/executions/<execution ARN>``, ``/models``, ``/devices``,
``/monitoring``, ``/mqtt``) that all serve the one page shell; its script reads the address and fills the view,
so a link to an execution can be shared. Every AWS or MQTT call runs in a worker thread.
The routes live with their page: :mod:`mlops_edge.console.pages` and the modules of
:mod:`mlops_edge.console.api`; this module composes them, in order, with the app's lifespan.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette

from mlops_edge.console import pages
from mlops_edge.console.api import devices, executions, models, monitoring, mqtt
from mlops_edge.console.auth import TokenAuth
from mlops_edge.console.backend import Backend
from mlops_edge.console.mqtt_hub import MqttHub
from mlops_edge.console.pages import PAGES, STATIC

__all__ = ["PAGES", "STATIC", "create_app"]


def create_app(
    backend: Backend,
    *,
    token: str,
    port: Callable[[], int],
    hub: MqttHub | None = None,
    example_input: Callable[[], dict[str, Any]],
    poll_s: float = 0.5,
) -> TokenAuth:
    """The console as an ASGI app, behind :class:`TokenAuth` (``port()`` is the port it listens on)."""
    hub = hub or MqttHub()
    routes = [
        *pages.routes(),
        *executions.routes(backend, poll_s=poll_s),
        *executions.input_routes(example_input),
        *models.routes(backend),
        *devices.routes(backend, hub),
        *monitoring.routes(backend),
        *mqtt.routes(hub),
        *pages.static_routes(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the fleet's telemetry from the start, so the Devices page has each device's latest at once
        # (a missing MQTT setting is only remembered: the page shows it)
        telemetry = threading.Thread(target=hub.start_telemetry, name="telemetry", daemon=True)
        telemetry.start()
        try:
            yield
        finally:
            await to_thread.run_sync(hub.close)

    app = Starlette(routes=routes, lifespan=lifespan)
    return TokenAuth(app, token=token, port=port)
