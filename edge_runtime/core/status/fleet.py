"""Fleet status (the Greengrass health message): on start, after each deployment, periodically."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ..lifecycle import ComponentService, State
from ..target import Target

NUCLEUS_VERSION = "2.12.0-sim"


def component_statuses(target: Target, services: dict[str, ComponentService]) -> list[dict[str, Any]]:
    """The health document's per-component entries: every component the target names, NEW
    until its service exists, with the error count once it has failed."""
    roots = target.roots()
    out = []
    for name, recipe in sorted(target.recipes.items()):
        service = services.get(name)
        out.append(
            {
                "componentName": name,
                "version": recipe.version,
                "state": (service.state.value if service else State.NEW.value),
                "isRoot": name in roots,
                "fleetConfigArns": target.fleet_config_arns(name),
                "statusDetails": {"errorCount": service.errors} if service and service.errors else {},
            }
        )
    return out


def fleet_status(
    thing: str,
    components: list[dict[str, Any]],
    sequence: int,
    *,
    unhealthy_states: tuple[str, ...] = ("BROKEN",),
) -> dict[str, Any]:
    """The health document of contracts §4; UNHEALTHY when any component is BROKEN."""
    healthy = all(c.get("state") not in unhealthy_states for c in components)
    return {
        "thing": thing,
        "overallDeviceStatus": "HEALTHY" if healthy else "UNHEALTHY",
        "timestamp": int(time.time() * 1000),
        "sequenceNumber": sequence,
        "messageType": "COMPLETE",
        "nucleusVersion": NUCLEUS_VERSION,
        "platform": "linux",
        "architecture": "amd64",
        "components": components,
    }


class FleetStatusReporter:
    """Publishes the health document on ``$aws/things/{thing}/greengrassv2/health/json``."""

    def __init__(
        self,
        thing: str,
        components: Callable[[], list[dict[str, Any]]],
        publish: Callable[[str, bytes], None],
        heartbeat_s: float,
    ) -> None:
        self.thing = thing
        self._components = components
        self._publish = publish
        self.heartbeat_s = heartbeat_s
        self._seq = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: dict[str, Any] | None = None

    def report(self) -> None:
        doc = fleet_status(self.thing, self._components(), next(self._seq))
        self.last = doc
        self._publish(f"$aws/things/{self.thing}/greengrassv2/health/json", json.dumps(doc).encode())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fleet-status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.report()
            except Exception:
                continue
