"""Batch mode: 256-row requests over MQTT, rows answered per second by one device.

What the device publishes is held to IoT Core's 100 publishes/s and 512 KiB/s, so rows per
second come from rows per request. The client keeps ``window`` requests outstanding (a new one
goes out as each answer comes back) so the device is never idle and never over its queue; only
rows of ``ok`` answers count.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .cpu import Processes, per_request

TARGET_ROWS_PER_S = 20_000


def run_batches(
    setup: Any, requester: Any, *, rows_per_request: int, duration: float, warmup: float, window: int = 8
) -> dict[str, Any]:
    """Send ``rows_per_request``-row requests for ``duration`` seconds, ``window`` at a time."""
    rows = [setup.rows[i % len(setup.rows)] for i in range(rows_per_request)]
    encoded_rows = json.dumps(rows, separators=(",", ":")).encode()
    _windowed(requester, encoded_rows, "bwarm", warmup, window)
    procs = Processes(setup.broker_pid, setup.device.pid)
    before = procs.cpu_seconds()
    started = time.perf_counter()
    ids = _windowed(requester, encoded_rows, "batch", duration, window)
    elapsed = time.perf_counter() - started
    after = procs.cpu_seconds()
    outcome = requester.outcomes(ids)
    ok = outcome["ok"]
    latencies = outcome["ok_latencies_ms"]
    rows_per_s = ok * rows_per_request / elapsed
    return {
        "rows_per_request": rows_per_request,
        "request_bytes": len(encoded_rows) + 40,
        "duration_s": round(elapsed, 2),
        "window": window,
        "sent": outcome["sent"],
        "ok": ok,
        "unanswered": outcome["unanswered"],
        "error_codes": outcome["error_codes"],
        "requests_per_s": round(ok / elapsed, 1),
        "rows_per_s": round(rows_per_s),
        "p50_ms": round(sorted(latencies)[len(latencies) // 2], 3) if latencies else None,
        "cpu_ms_per_request": per_request(before, after, ok),
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "pass": rows_per_s >= TARGET_ROWS_PER_S and outcome["unanswered"] == 0 and not outcome["error_codes"],
    }


def _windowed(requester: Any, encoded_rows: bytes, tag: str, seconds: float, window: int) -> list[str]:
    """Keep ``window`` requests unanswered until ``seconds`` pass; then wait for the last answers."""
    ids: list[str] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        with requester.answered:
            requester.answered.wait_for(
                lambda: sum(1 for i in ids[-window * 2 :] if i not in requester.latencies) < window, timeout=5
            )
        rid = f"{tag}-{len(ids)}"
        requester.send_raw(rid, b'{"id":"%s","instances":%s}' % (rid.encode(), encoded_rows))
        ids.append(rid)
    end = time.monotonic() + 10
    while time.monotonic() < end and any(i not in requester.latencies for i in ids[-window:]):
        time.sleep(0.01)
    return ids
