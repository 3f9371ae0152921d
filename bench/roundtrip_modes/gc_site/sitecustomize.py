"""Records every garbage collection's pause in a benchmarked process (``device_roundtrip.py --gc-probe``).

Python imports ``sitecustomize`` at start-up from its path: the bench puts this folder on the
``PYTHONPATH`` of the device (and so of the components it starts) and sets ``ROUNDTRIP_GC_DIR``.
Why: a p99 far above the p50 is often a collector pause in one of the processes on the path; this
says which process, which generation, how often and how long, without changing their code.
Each process writes ``<dir>/<pid>.json`` every second and at exit. Without the variable: nothing.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import threading
import time

_DIR = os.environ.get("ROUNDTRIP_GC_DIR")


def _install(folder: str) -> None:
    started: list[float] = [0.0]
    stats = {g: {"count": 0, "total_ms": 0.0, "max_ms": 0.0} for g in range(3)}
    long_pauses: list[tuple[float, int, float]] = []  # (wall time, generation, ms) of pauses >= 1 ms

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000.0
        s = stats[info["generation"]]
        s["count"] += 1
        s["total_ms"] += ms
        s["max_ms"] = max(s["max_ms"], ms)
        if ms >= 1.0 and len(long_pauses) < 10_000:
            long_pauses.append((time.time(), info["generation"], round(ms, 3)))

    def write() -> None:
        doc = {"argv": sys.argv, "pid": os.getpid(), "generations": stats, "pauses_over_1ms": long_pauses}
        path = os.path.join(folder, f"{os.getpid()}.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(doc, f)
            os.replace(path + ".tmp", path)
        except OSError:
            pass

    def loop() -> None:
        while True:
            time.sleep(1.0)
            write()

    gc.callbacks.append(on_gc)
    threading.Thread(target=loop, name="gc-probe", daemon=True).start()
    atexit.register(write)


if _DIR:
    _install(_DIR)
