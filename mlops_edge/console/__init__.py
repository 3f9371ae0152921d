"""`mlops-edge console`: the Step Functions execution view, the MQTT test client, the registry and
the fleet in one local web page (docs/console.md).

``create_app`` builds the ASGI app (behind its token) and ``serve`` runs it on 127.0.0.1. Imports
are lazy, so importing this package costs nothing until one of them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ConsoleSettings", "create_app", "serve"]

if TYPE_CHECKING:
    from mlops_edge.console.app import create_app
    from mlops_edge.console.server import ConsoleSettings, serve


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mlops_edge.console.app import create_app

        return create_app
    if name in ("ConsoleSettings", "serve"):
        from mlops_edge.console import server

        return getattr(server, name)
    raise AttributeError(name)
