"""Request/error counters and latency percentiles, published periodically as telemetry."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[rank]


class Telemetry:
    """Thread-safe counters; latencies kept in a bounded window so memory stays flat."""

    def __init__(self, window: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=window)
        self.requests = 0
        self.errors = 0
        self.started = time.time()

    def record(self, latency_ms: float | None, ok: bool) -> None:
        """Count one handled request; only successful ones contribute a latency."""
        with self._lock:
            self.requests += 1
            if not ok:
                self.errors += 1
            if latency_ms is not None and ok:
                self._latencies.append(latency_ms)

    def snapshot(self) -> dict[str, Any]:
        """Totals since start plus latency percentiles over the recent window."""
        with self._lock:
            lat = sorted(self._latencies)
            return {
                "requests": self.requests,
                "errors": self.errors,
                "latency_ms": {
                    "p50": round(percentile(lat, 50), 4),
                    "p99": round(percentile(lat, 99), 4),
                    "window": len(lat),
                },
                "uptime_s": round(time.time() - self.started, 3),
            }
