"""CPU seconds per request of each process on the request path, from psutil.

The processes: the broker (mosquitto, started by the local cloud), the core (``python -m
edge_runtime.core``), the inference component and, on the device, any other component
(the local pub/sub consumer), found among the core's descendants by their command line; the
load client is this process. A mode reads them before and after; the difference over the
requests answered is the CPU one request costs each process (all threads, user + system).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

#: role -> a string that names it in a descendant's command line
COMPONENT_MARKERS = {"inference component": "inference_component", "consumer component": "roundtrip_consumer"}


@dataclass
class Processes:
    """The processes of one deployed device, by role (found again whenever asked)."""

    broker_pid: int | None
    core_pid: int
    client_pid: int = os.getpid()

    def find(self) -> dict[str, psutil.Process]:
        found: dict[str, psutil.Process] = {}
        if self.broker_pid:
            found["broker"] = psutil.Process(self.broker_pid)
        core = psutil.Process(self.core_pid)
        found["core"] = core
        for child in core.children(recursive=True):
            try:
                cmdline = " ".join(child.cmdline())
            except psutil.Error:
                continue
            for role, marker in COMPONENT_MARKERS.items():
                # the python process itself, not the shell (sh -c) that execs it
                if marker in cmdline and "python" in os.path.basename(child.cmdline()[0]):
                    found[role] = child
        found["load client"] = psutil.Process(self.client_pid)
        return found

    def cpu_seconds(self) -> dict[str, float]:
        """Each role's CPU seconds so far (user + system, all threads)."""
        out = {}
        for role, proc in self.find().items():
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            out[role] = times.user + times.system
        return out


def per_request(
    before: dict[str, float], after: dict[str, float], requests: int, **extra: float
) -> dict[str, Any]:
    """CPU milliseconds per request of each role between two readings (``extra``: roles measured elsewhere)."""
    if requests <= 0:
        return {}
    out = {
        role: round((after[role] - before[role]) * 1000.0 / requests, 4) for role in after if role in before
    }
    out.update({role: round(seconds * 1000.0 / requests, 4) for role, seconds in extra.items()})
    return out


def idle_cpu(procs: Processes, seconds: float) -> dict[str, float]:
    """CPU ms per second of each process with no request in flight: what a mode's per-request
    figure includes spread over its requests (at 100 requests/s, 10 ms/s idle is 0.1 ms each)."""
    before = procs.cpu_seconds()
    time.sleep(seconds)
    after = procs.cpu_seconds()
    return {
        role: round((after[role] - before[role]) * 1000.0 / seconds, 2) for role in after if role in before
    }


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"
