"""Batches of plain rows take payload.py's vectorized path: same matrix, same errors as value by value."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from edge_runtime.inference import InvalidInput
from edge_runtime.inference import payload as payload_module
from edge_runtime.inference.payload import F32_MAX, to_matrix

FEATURES = ["a", "b", "c"]
INDEX = {n: i for i, n in enumerate(FEATURES)}


def _matrix(rows: object, *, allow_missing: bool = True) -> np.ndarray:
    return to_matrix(
        {"instances": rows}, FEATURES, INDEX, allow_missing=allow_missing, max_batch=4096, max_bytes=1 << 22
    )


def _per_value(rows: list, allow_missing: bool = True) -> np.ndarray:
    """The matrix the per-value path builds (the fast path switched off)."""
    saved = payload_module._rows_fast
    payload_module._rows_fast = lambda *_args: None
    try:
        return _matrix(rows, allow_missing=allow_missing)
    finally:
        payload_module._rows_fast = saved


def test_a_batch_of_numbers_gives_the_per_value_matrix() -> None:
    rng = random.Random(7)
    rows = [[rng.uniform(-1e6, 1e6), rng.randint(-5, 5), rng.random() / 3] for _ in range(256)]
    rows[3][1] = F32_MAX  # the edge of float32's range is still a number
    rows[4][0] = math.nan  # a missing value where allowed
    fast = _matrix(rows)
    assert fast.dtype == np.float32 and fast.shape == (256, 3)
    np.testing.assert_array_equal(fast, _per_value(rows))


@pytest.mark.parametrize(
    ("bad", "code", "allow_missing"),
    [
        (True, "wrong_type", True),
        ("1.5", "wrong_type", True),
        (None, "missing_value", False),
        (math.nan, "missing_value", False),
        (math.inf, "non_finite", True),
        (-1e39, "non_finite", True),
        (10**400, "non_finite", True),
    ],
)
def test_a_bad_value_in_a_batch_is_named_as_before(bad: object, code: str, allow_missing: bool) -> None:
    rows = [[1.0, 2.0, 3.0] for _ in range(40)]
    rows[17] = [1.0, bad, 3.0]
    with pytest.raises(InvalidInput) as err:
        _matrix(rows, allow_missing=allow_missing)
    assert err.value.code == code
    assert "row 17" in str(err.value) and "'b'" in str(err.value)


def test_a_short_row_or_a_tuple_row_in_a_batch() -> None:
    rows: list = [[1.0, 2.0, 3.0] for _ in range(8)]
    rows[5] = [1.0, 2.0]
    with pytest.raises(InvalidInput, match="row 5: row has 2 values") as err:
        _matrix(rows)
    assert err.value.code == "wrong_length"
    rows[5] = (4.0, 5.0, 6.0)  # tuples are rows too (Python callers): the per-value path reads them
    assert _matrix(rows)[5].tolist() == [4.0, 5.0, 6.0]
