"""The one percentile of the project: nearest rank.

Why one definition: the device's telemetry, the pipeline's verification report and the benchmarks
all print p50/p99 latencies, and figures only compare when they are computed the same way. Nearest
rank (no interpolation) always returns a value that was measured: with 10 samples p99 is the
slowest one, not a blend of the two slowest. Standard library only, because this module ships
inside the inference component's artifact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["percentile"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0 <= q <= 100) of ``values`` by nearest rank; None when empty.

    The rank is ``ceil(q * n / 100)`` (at least 1) of the sorted values: q=0 gives the minimum,
    q=100 the maximum. ``q * n`` is computed before dividing so that whole-number percentiles do
    not pick up a rounding error (``0.07 * 100`` is 7.000000000000001; ``7 * 100 / 100`` is 7.0).
    Empty input has no percentile: callers choose what to show for it.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q!r}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered) / 100))
    return float(ordered[rank - 1])
