"""What the API route modules share: reading a JSON body, turning a :class:`ConsoleError` into
a JSON error, wrapping a handler as an endpoint, and event streams that report a late failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mlops_edge.console.backend import ConsoleError
from mlops_edge.console.executions import sse

__all__ = ["STREAM_HEADERS", "api", "body", "event_stream", "guarded", "int_or"]

STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def error(exc: ConsoleError) -> JSONResponse:
    doc: dict[str, Any] = {"error": str(exc)}
    if exc.code:
        doc["code"] = exc.code
    if exc.details is not None:
        doc["problems"] = exc.details
    return JSONResponse(doc, status_code=exc.status)


async def body(request: Request) -> dict[str, Any]:
    try:
        doc = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ConsoleError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConsoleError("the request body must be a JSON object")
    return doc


def api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except ConsoleError as exc:
            return error(exc)
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


def int_or(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


async def guarded(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """A stream that fails after it started tells the page why (an ``error`` event), then ends."""
    try:
        async for chunk in stream:
            yield chunk
    except ConsoleError as exc:
        yield sse({"error": str(exc)}, event="error")


def event_stream(stream: AsyncIterator[str]) -> StreamingResponse:
    """``stream`` as a ``text/event-stream`` response, guarded and never cached."""
    return StreamingResponse(guarded(stream), media_type="text/event-stream", headers=STREAM_HEADERS)
