"""``--gc-probe``: every collector pause of the core, the inference component and the consumer.

:func:`prepare` puts ``gc_site/`` (a ``sitecustomize`` recording ``gc.callbacks``) on the
``PYTHONPATH`` the device inherits, and returns an interpreter wrapper for the inference component,
whose recipe sets its own ``PYTHONPATH``. :func:`summary` reads what each process wrote: per
process and generation the collections, their total and longest pause, and the pauses of 1 ms or
more inside the measured window. Why: it tells whether a p99 far above the p50 is a collector pause.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

SITE = Path(__file__).resolve().parent / "gc_site"
#: A substring of each process's argv (``-m`` shows as the module's file), and its name in the report.
ROLES = (
    ("inference_component/__main__.py serve", "inference component"),
    ("roundtrip_consumer", "consumer"),
    ("edge_runtime/core/__main__", "core"),
)


def prepare(workdir: Path) -> Path:
    """Turn the probe on for processes started from now on; returns the inference component's Python."""
    folder = workdir / "gc"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["ROUNDTRIP_GC_DIR"] = str(folder)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), os.environ.get("PYTHONPATH")]))
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{SITE}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def _role(argv: list[str]) -> str | None:
    text = " ".join(argv)
    return next((name for key, name in ROLES if key in text), None)


def summary(workdir: Path, start: float, end: float) -> dict[str, Any]:
    """Per process: collections per generation (whole life) and pauses >= 1 ms in [start, end]."""
    out: dict[str, Any] = {}
    for path in sorted((workdir / "gc").glob("*.json")):
        doc = json.loads(path.read_text())
        role = _role(doc.get("argv") or [])
        if role is None:
            continue
        inside = [ms for t, _g, ms in doc["pauses_over_1ms"] if start <= t <= end]
        out[role] = {
            "generations": {
                g: {"count": s["count"], "total_ms": round(s["total_ms"], 1), "max_ms": round(s["max_ms"], 2)}
                for g, s in doc["generations"].items()
            },
            "window_pauses_over_1ms": len(inside),
            "window_pauses_over_5ms": sum(ms >= 5 for ms in inside),
            "window_longest_ms": max(inside, default=0.0),
            "window_pause_ms_total": round(sum(inside), 1),
        }
    return out
