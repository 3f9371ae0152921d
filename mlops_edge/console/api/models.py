"""``/api/models``: the model registry's packages and setting one's approval."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.routing import Route

from mlops_edge.console.api.common import api, body
from mlops_edge.console.backend import Backend

__all__ = ["routes"]


def routes(backend: Backend) -> list[Route]:
    async def list_models(request: Request) -> Any:
        return await to_thread.run_sync(backend.list_models)

    async def set_approval(request: Request) -> Any:
        doc = await body(request)
        arn = request.path_params["arn"]
        status = str(doc.get("status", ""))
        description = str(doc.get("description") or "")
        return await to_thread.run_sync(lambda: backend.set_approval(arn, status, description))

    return [
        Route("/api/models", api(list_models)),
        Route("/api/models/{arn:path}/approval", api(set_approval), methods=["POST"]),
    ]
