"""edge_runtime.inference.stats.percentile: nearest rank, the one definition every figure uses."""

from __future__ import annotations

import pytest

from edge_runtime.inference.stats import percentile

TEN = [float(i) for i in range(1, 11)]
HUNDRED = [float(i) for i in range(1, 101)]

CASES = [
    # (values, q, expected)
    ([], 50, None),
    ([], 0, None),
    ([], 100, None),
    ([4.0], 0, 4.0),
    ([4.0], 50, 4.0),
    ([4.0], 100, 4.0),
    (TEN, 0, 1.0),  # q=0: the minimum
    (TEN, 100, 10.0),  # q=100: the maximum
    (TEN, 99, 10.0),  # 10 samples: p99 is the slowest one, not a blend of the two slowest
    (TEN, 90, 9.0),
    (TEN, 50, 5.0),  # rank ceil(5.0) = 5: the lower middle, no averaging of 5 and 6
    (TEN, 51, 6.0),
    (TEN, 10, 1.0),
    (TEN, 11, 2.0),
    (HUNDRED, 50, 50.0),
    (HUNDRED, 99, 99.0),
    (HUNDRED, 7, 7.0),  # 0.07 * 100 == 7.000000000000001 would round the rank up to 8
    (HUNDRED, 55, 55.0),
    (HUNDRED, 99.5, 100.0),
    ([5.0, 1.0, 3.0], 50, 3.0),  # unsorted input is sorted first
    ([3, 1, 2], 100, 3.0),  # integers in, a float out
    (iter([2.0, 1.0]), 50, 1.0),  # any iterable, consumed once
    ([-1.5, -3.0, 2.0], 0, -3.0),
]


@pytest.mark.parametrize(("values", "q", "expected"), CASES)
def test_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    got = percentile(values, q)
    assert got == expected
    assert got is None or isinstance(got, float)


@pytest.mark.parametrize("q", [-0.1, 100.1, 150, -50])
def test_q_outside_0_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="within"):
        percentile(TEN, q)


def test_input_is_not_modified() -> None:
    values = [3.0, 1.0, 2.0]
    percentile(values, 50)
    assert values == [3.0, 1.0, 2.0]
