"""Load: requests at a fixed open-loop rate; every answer matched by id, rejections apart."""

from __future__ import annotations

import time
from typing import Any

from . import roundtrip


def load(setup: Any, *, rate: float, seconds: float, tag: str, grace_s: float = 5.0) -> dict[str, Any]:
    """Open loop at ``rate`` for ``seconds``; every answer by id, rejections apart, then stragglers."""
    requester = roundtrip._Requester(setup.client, setup.thing, setup.rows)
    ids = requester.fire(int(rate * seconds), tag, rate)
    last = time.monotonic()
    while len(requester.answered_of(ids)) < len(ids) and time.monotonic() - last < grace_s:
        time.sleep(0.05)
    settled_s = time.monotonic() - last
    time.sleep(0.5)  # duplicates would show now
    out = requester.outcomes(ids)
    ok, rejected = out.pop("ok_latencies_ms"), out.pop("rejected_latencies_ms")
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        **out,
        "duplicates": requester.duplicates,
        "ok_per_s": round(out["ok"] / (seconds + settled_s), 1),
        "ok_p50_ms": _pct(ok, 50),
        "ok_p99_ms": _pct(ok, 99),
        "ok_max_ms": round(max(ok), 1) if ok else None,
        "rejected_p50_ms": _pct(rejected, 50),
        "rejected_max_ms": round(max(rejected), 1) if rejected else None,
        "last_answer_after_s": round(settled_s, 2),
    }


def _pct(values: list[float], q: float) -> float | None:
    value = roundtrip._percentile(values, q)
    return None if value != value else round(value, 2)
