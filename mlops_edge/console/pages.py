"""The console's page URLs (all serving the one page shell), the favicon and ``/static``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

__all__ = ["PAGES", "STATIC", "routes", "static_routes"]

STATIC = Path(__file__).with_name("static")
PAGES = ("executions", "models", "devices", "monitoring", "mqtt")


def routes() -> list[BaseRoute]:
    """``/`` (to the executions), each page and an execution's own address."""
    shell = (STATIC / "index.html").read_text()

    async def page(request: Request) -> Response:
        return Response(shell, media_type="text/html", headers={"Cache-Control": "no-store"})

    async def home(request: Request) -> Response:
        return RedirectResponse("/executions", status_code=303)

    return [
        Route("/", home),
        *[Route(f"/{name}", page) for name in PAGES],
        Route("/executions/{arn:path}", page),
    ]


def static_routes() -> list[BaseRoute]:
    """The favicon and the page's scripts and styles under ``/static``."""

    async def favicon(request: Request) -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    return [
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
