"""Who may use the console: whoever has the token, from this machine, through its own address.

As jupyter_server does it: a random token (or ``MLOPS_EDGE_CONSOLE_TOKEN``) is printed in the URL;
``?token=`` is traded for an HttpOnly, SameSite=Strict cookie and the page is reloaded without it,
so the token leaves the address bar. A request must carry the cookie, the ``?token=`` or an
``Authorization: token <token>`` header, compared in constant time (``hmac.compare_digest``).

A ``Host`` other than the loopback address and port the console listens on is refused (a page on
another site cannot reach the console through DNS rebinding), and a request that changes something
(POST, DELETE) must be JSON and, when the browser names an ``Origin``, come from the console's own.
Every URL is behind this, the static files included.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["TOKEN_ENV", "TokenAuth", "new_token"]

TOKEN_ENV = "MLOPS_EDGE_CONSOLE_TOKEN"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_token() -> str:
    """``$MLOPS_EDGE_CONSOLE_TOKEN`` when set (16 or more URL-safe characters), else 256 random bits."""
    given = os.environ.get(TOKEN_ENV, "")
    if given:
        if not re.fullmatch(r"[A-Za-z0-9._~-]{16,}", given):
            raise ValueError(
                f"{TOKEN_ENV} must be at least 16 letters, digits or ._~- (it goes in a URL and a cookie)"
            )
        return given
    return secrets.token_urlsafe(32)


class TokenAuth:
    """ASGI middleware in front of the whole app (pure ASGI, so streams pass through untouched)."""

    def __init__(self, app: ASGIApp, *, token: str, port: Callable[[], int]) -> None:
        self.app = app
        self._token = token.encode()
        self._port = port

    @property
    def cookie_name(self) -> str:
        # cookies ignore ports: two consoles on one machine must not overwrite each other's
        return f"mlops-edge-console-{self._port()}"

    def _valid(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self._token)  # type: ignore[union-attr]

    def _host_allowed(self, headers: dict[str, str]) -> bool:
        host = headers.get("host", "")
        name, _, port = host.rpartition(":")
        return name in LOOPBACK_HOSTS and port == str(self._port())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self._host_allowed(headers):
            await _respond(send, 403, {"error": "this console answers only on its own loopback address"})
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        cookie = SimpleCookie(headers.get("cookie", ""))
        from_cookie = cookie[self.cookie_name].value if self.cookie_name in cookie else None
        scheme, _, from_header = headers.get("authorization", "").partition(" ")
        method = scope["method"]
        if given is not None and self._valid(given) and method == "GET":
            # trade the token for a cookie and show the same page without it
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            await _redirect(send, location, self._set_cookie())
            return
        authorized = self._valid(from_cookie) or (scheme.lower() == "token" and self._valid(from_header))
        if not authorized:
            await _respond(
                send,
                401,
                {
                    "error": "open the console with the URL `mlops-edge console` printed (it carries the token)"
                },
            )
            return
        if method not in ("GET", "HEAD") and not self._same_origin_json(headers):
            await _respond(send, 403, {"error": "changes must be JSON requests from the console's own page"})
            return
        await self.app(scope, receive, send)

    def _same_origin_json(self, headers: dict[str, str]) -> bool:
        if not headers.get("content-type", "").startswith("application/json"):
            return False
        origin = headers.get("origin")
        return origin is None or origin in {f"http://{h}:{self._port()}" for h in LOOPBACK_HOSTS}

    def _set_cookie(self) -> str:
        return f"{self.cookie_name}={self._token.decode()}; Path=/; HttpOnly; SameSite=Strict"


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _redirect(send: Send, location: str, cookie: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"cache-control", b"no-store"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
