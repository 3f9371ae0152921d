"""``create_app``: the console's routes — pages, the JSON API under ``/api``, live streams, static files.

Pages are plain URLs (``/executions``, ``/executions/<execution ARN>``, ``/models``, ``/devices``,
``/mqtt``) that all serve the one page shell; its script reads the address and fills the view,
so a link to an execution can be shared. Every AWS or MQTT call runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlops_edge.console.auth import TokenAuth
from mlops_edge.console.backend import Backend, ConsoleError, input_problems
from mlops_edge.console.executions import execution_stream, sse
from mlops_edge.console.mqtt_hub import MqttHub

__all__ = ["STATIC", "create_app"]

STATIC = Path(__file__).with_name("static")
PAGES = ("executions", "models", "devices", "mqtt")
_STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _error(exc: ConsoleError) -> JSONResponse:
    body: dict[str, Any] = {"error": str(exc)}
    if exc.code:
        body["code"] = exc.code
    if exc.details is not None:
        body["problems"] = exc.details
    return JSONResponse(body, status_code=exc.status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ConsoleError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ConsoleError("the request body must be a JSON object")
    return body


def _api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except ConsoleError as exc:
            return _error(exc)
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


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
    shell = (STATIC / "index.html").read_text()

    async def page(request: Request) -> Response:
        return Response(shell, media_type="text/html", headers={"Cache-Control": "no-store"})

    async def home(request: Request) -> Response:
        return RedirectResponse("/executions", status_code=303)

    # -- executions --------------------------------------------------------------------------------
    async def list_executions(request: Request) -> Any:
        return await to_thread.run_sync(backend.list_executions)

    async def start_execution(request: Request) -> Any:
        body = await _body(request)
        if "input" not in body:
            raise ConsoleError("the request needs an 'input' document")
        name = body.get("name") or None
        return await to_thread.run_sync(lambda: backend.start_execution(body["input"], name))

    async def describe_execution(request: Request) -> Any:
        return await to_thread.run_sync(backend.describe_execution, request.path_params["arn"])

    async def stop_execution(request: Request) -> Any:
        return await to_thread.run_sync(backend.stop_execution, request.path_params["arn"])

    async def export_history(request: Request) -> Any:
        from mlops_edge.console.executions import event_json
        from mlops_edge.report.history import fetch_history

        arn = request.path_params["arn"]
        sfn = backend.client("stepfunctions")
        from mlops_edge.console.backend import aws_errors

        def read() -> list[dict[str, Any]]:
            with aws_errors():
                return [event_json(e) for e in fetch_history(sfn, arn)]

        events = await to_thread.run_sync(read)
        name = arn.rsplit(":", 1)[-1]
        return Response(
            json.dumps({"executionArn": arn, "events": events}, indent=2),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}-history.json"'},
        )

    async def stream_execution(request: Request) -> Any:
        arn = request.path_params["arn"]
        last = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        try:
            last_id = int(last)
        except ValueError as exc:
            raise ConsoleError(f"Last-Event-ID must be a history event id, not {last!r}") from exc
        sfn = backend.client("stepfunctions")
        stream = execution_stream(
            sfn, arn, last_event_id=last_id, is_disconnected=request.is_disconnected, poll_s=poll_s
        )
        return StreamingResponse(_guarded(stream), media_type="text/event-stream", headers=_STREAM_HEADERS)

    # -- input -------------------------------------------------------------------------------------
    async def get_example(request: Request) -> Any:
        from pipeline.config import schema

        return {"example": example_input(), "schema": schema()}

    async def validate_input(request: Request) -> Any:
        body = await _body(request)
        return {"problems": input_problems(body.get("input"))}

    # -- registry ----------------------------------------------------------------------------------
    async def list_models(request: Request) -> Any:
        return await to_thread.run_sync(backend.list_models)

    async def set_approval(request: Request) -> Any:
        body = await _body(request)
        arn = request.path_params["arn"]
        status = str(body.get("status", ""))
        description = str(body.get("description") or "")
        return await to_thread.run_sync(lambda: backend.set_approval(arn, status, description))

    # -- fleet -------------------------------------------------------------------------------------
    async def list_devices(request: Request) -> Any:
        fresh = request.query_params.get("fresh") == "1"
        devices = await to_thread.run_sync(lambda: backend.fleet(fresh=fresh))
        problem = await hub.astart_telemetry()
        return {"devices": devices, "telemetry": hub.latest, "telemetry_problem": problem}

    async def stream_telemetry(request: Request) -> Any:
        problem = await hub.astart_telemetry()
        if problem:
            raise ConsoleError(problem, 503)
        after = _int(request.headers.get("last-event-id"), 0)

        async def events() -> AsyncIterator[str]:
            async for batch in hub.telemetry.follow(after):
                if await request.is_disconnected():
                    return
                if batch is None:
                    yield ": keep-alive\n\n"
                    continue
                docs = [m.json for m in batch if isinstance(m.json, dict)]
                yield sse({"telemetry": docs}, event="telemetry", id=batch[-1].seq)

        return StreamingResponse(_guarded(events()), media_type="text/event-stream", headers=_STREAM_HEADERS)

    # -- MQTT test client --------------------------------------------------------------------------
    async def mqtt_subscribe(request: Request) -> Any:
        body = await _body(request)
        session = hub.session(str(body.get("session", "")))
        topics = await to_thread.run_sync(session.subscribe, str(body.get("topic", "")))
        return {"topics": topics}

    async def mqtt_unsubscribe(request: Request) -> Any:
        body = await _body(request)
        session = hub.session(str(body.get("session", "")))
        topics = await to_thread.run_sync(session.unsubscribe, str(body.get("topic", "")))
        return {"topics": topics}

    async def mqtt_publish(request: Request) -> Any:
        body = await _body(request)
        payload = body.get("payload", "")
        text = payload if isinstance(payload, str) else json.dumps(payload)
        topic = str(body.get("topic", ""))
        await to_thread.run_sync(hub.publish, topic, text)
        return {"published": topic}

    async def mqtt_clear(request: Request) -> Any:
        body = await _body(request)
        hub.session(str(body.get("session", ""))).log.clear()
        return {"cleared": True}

    async def mqtt_stream(request: Request) -> Any:
        session = hub.session(request.query_params.get("session", ""))
        after = _int(request.headers.get("last-event-id"), 0)

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

        return StreamingResponse(_guarded(events()), media_type="text/event-stream", headers=_STREAM_HEADERS)

    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    routes = [
        Route("/", home),
        *[Route(f"/{name}", page) for name in PAGES],
        Route("/executions/{arn:path}", page),
        Route("/api/executions", _api(list_executions)),
        Route("/api/executions", _api(start_execution), methods=["POST"]),
        Route("/api/executions/{arn:path}/stream", _api(stream_execution)),
        Route("/api/executions/{arn:path}/history", _api(export_history)),
        Route("/api/executions/{arn:path}/stop", _api(stop_execution), methods=["POST"]),
        Route("/api/executions/{arn:path}", _api(describe_execution)),
        Route("/api/input", _api(get_example)),
        Route("/api/input/validate", _api(validate_input), methods=["POST"]),
        Route("/api/models", _api(list_models)),
        Route("/api/models/{arn:path}/approval", _api(set_approval), methods=["POST"]),
        Route("/api/devices", _api(list_devices)),
        Route("/api/devices/telemetry", _api(stream_telemetry)),
        Route("/api/mqtt/subscribe", _api(mqtt_subscribe), methods=["POST"]),
        Route("/api/mqtt/unsubscribe", _api(mqtt_unsubscribe), methods=["POST"]),
        Route("/api/mqtt/publish", _api(mqtt_publish), methods=["POST"]),
        Route("/api/mqtt/clear", _api(mqtt_clear), methods=["POST"]),
        Route("/api/mqtt/stream", _api(mqtt_stream)),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
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


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


async def _guarded(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """A stream that fails after it started tells the page why (an ``error`` event), then ends."""
    try:
        async for chunk in stream:
            yield chunk
    except ConsoleError as exc:
        yield sse({"error": str(exc)}, event="error")
