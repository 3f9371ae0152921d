"""``/api/executions`` (list, start, describe, stop, export the history, live stream) and
``/api/input`` (the example input with its schema, validation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlops_edge.console.api.common import api, body, event_stream
from mlops_edge.console.backend import Backend, ConsoleError, input_problems
from mlops_edge.console.executions import execution_stream

__all__ = ["input_routes", "routes"]


def routes(backend: Backend, *, poll_s: float) -> list[Route]:
    async def list_executions(request: Request) -> Any:
        return await to_thread.run_sync(backend.list_executions)

    async def start_execution(request: Request) -> Any:
        doc = await body(request)
        if "input" not in doc:
            raise ConsoleError("the request needs an 'input' document")
        name = doc.get("name") or None
        return await to_thread.run_sync(lambda: backend.start_execution(doc["input"], name))

    async def describe_execution(request: Request) -> Any:
        return await to_thread.run_sync(backend.describe_execution, request.path_params["arn"])

    async def stop_execution(request: Request) -> Any:
        return await to_thread.run_sync(backend.stop_execution, request.path_params["arn"])

    async def export_history(request: Request) -> Any:
        return await _export_history(backend, request.path_params["arn"])

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
        return event_stream(stream)

    return [
        Route("/api/executions", api(list_executions)),
        Route("/api/executions", api(start_execution), methods=["POST"]),
        Route("/api/executions/{arn:path}/stream", api(stream_execution)),
        Route("/api/executions/{arn:path}/history", api(export_history)),
        Route("/api/executions/{arn:path}/stop", api(stop_execution), methods=["POST"]),
        Route("/api/executions/{arn:path}", api(describe_execution)),
    ]


async def _export_history(backend: Backend, arn: str) -> Response:
    from mlops_edge.console.backend import aws_errors
    from mlops_edge.console.executions import event_json
    from mlops_edge.report.history import fetch_history

    sfn = backend.client("stepfunctions")

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


def input_routes(example_input: Callable[[], dict[str, Any]]) -> list[Route]:
    async def get_example(request: Request) -> Any:
        from pipeline.config import schema

        return {"example": example_input(), "schema": schema()}

    async def validate_input(request: Request) -> Any:
        doc = await body(request)
        return {"problems": input_problems(doc.get("input"))}

    return [
        Route("/api/input", api(get_example)),
        Route("/api/input/validate", api(validate_input), methods=["POST"]),
    ]
