"""A handler for the IoT rules engine's integration test: what it was invoked with, in its logs."""

from __future__ import annotations

import json
from typing import Any


def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print("EVENT " + json.dumps(event, sort_keys=True))
    return event
