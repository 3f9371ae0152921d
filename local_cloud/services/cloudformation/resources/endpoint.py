"""The endpoint the handlers run in: :func:`bind` (once, by the provider) and :func:`client`, boto3
against this local cloud, one client per service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local_cloud.context import ServerContext

_CONTEXT: ServerContext | None = None


def bind(ctx: ServerContext) -> None:
    """Tell the handlers which endpoint they run in (the provider does, once, at start)."""
    global _CONTEXT
    _CONTEXT = ctx
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def client(service: str) -> Any:
    """A boto3 client of this local cloud, as a user's code would make (made once per service:
    making one costs more than most of the calls a stack makes with it)."""
    if _CONTEXT is None:
        raise RuntimeError("CloudFormation handlers are not bound to a local cloud (call bind(ctx))")
    with _CLIENTS_LOCK:
        if service not in _CLIENTS:
            _CLIENTS[service] = _CONTEXT.client(service)
        return _CLIENTS[service]
