"""Request/error counters and latency percentiles, published periodically as telemetry."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from edge_runtime.inference.stats import percentile


def _ms(values: list[float], q: float) -> float:
    """A latency percentile for the telemetry document: 0.0 before any request succeeded.

    0.0 rather than null keeps the document's fields numeric, as consumers have always read them.
    """
    value = percentile(values, q)
    return 0.0 if value is None else round(value, 4)


class Telemetry:
    """Thread-safe counters; latencies kept in a bounded window so memory stays flat.

    ``requests`` counts every request received, ``errors`` every error result among them (the
    rejections included), ``rejected`` the requests refused by overload, per code (``BUSY``,
    ``THROTTLED``), and ``publish_failures`` results the nucleus could not publish.
    """

    def __init__(self, window: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=window)
        self.requests = 0
        self.errors = 0
        self.rejected: dict[str, int] = {}
        self.publish_failures = 0
        self.started = time.time()

    def record(self, latency_ms: float | None, ok: bool) -> None:
        """Count one handled request; only successful ones contribute a latency."""
        with self._lock:
            self.requests += 1
            if not ok:
                self.errors += 1
            if latency_ms is not None and ok:
                self._latencies.append(latency_ms)

    def reject(self, code: str) -> None:
        """Count one request refused by overload (answered with an error result ``code``)."""
        with self._lock:
            self.requests += 1
            self.errors += 1
            self.rejected[code] = self.rejected.get(code, 0) + 1

    def publish_failed(self) -> None:
        """Count one result the nucleus reported it could not publish."""
        with self._lock:
            self.publish_failures += 1

    def snapshot(self) -> dict[str, Any]:
        """Totals since start plus latency percentiles over the recent window."""
        with self._lock:
            lat = sorted(self._latencies)  # sorted once: each percentile's own sort is then linear
            return {
                "requests": self.requests,
                "errors": self.errors,
                "rejected": dict(self.rejected),
                "publish_failures": self.publish_failures,
                "latency_ms": {"p50": _ms(lat, 50), "p99": _ms(lat, 99), "window": len(lat)},
                "uptime_s": round(time.time() - self.started, 3),
            }
