"""UpdateState: a component reports RUNNING or ERRORED about itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .exceptions import InvalidArgumentsError
from .server import Handler, Stream


def handlers(report_state: Callable[[str, str], None]) -> dict[str, Handler]:
    """``report_state(component, state)`` applies the transition through the lifecycle table."""

    def update_state(stream: Stream, req: dict[str, Any]) -> None:
        state = req.get("state")
        if state not in ("RUNNING", "ERRORED"):
            raise InvalidArgumentsError("state must be RUNNING or ERRORED")
        report_state(stream.component, state)
        stream.respond("UpdateStateResponse", {})

    return {"UpdateState": update_state}
