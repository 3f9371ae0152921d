"""The one-row unwrap the service applies before the engine: only where the answer cannot differ."""

from __future__ import annotations

import pytest
from inference_component.request_parsing import _single_row

FEATURES = frozenset({"a", "b"})


def test_one_row_of_numbers_is_unwrapped() -> None:
    assert _single_row({"instances": [[1.0, 2]]}, FEATURES) == [1.0, 2]
    assert _single_row({"rows": [[0.5, 3]]}, FEATURES) == [0.5, 3]


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[1.0, 2.0], [3.0, 4.0]]},  # a batch
        {"instances": [[1.0, None]]},  # a missing value: the general path decides
        {"instances": [[1.0, True]]},  # a bool is no number
        {"instances": [[[1.0], 2.0]]},  # nested: the general path names the error
        {"instances": [{"a": 1.0, "b": 2.0}]},  # a record
        {"instances": [[]]},
        {"instances": [[1.0, 2.0]], "extra": 1},
        {"body": '{"instances": [[1, 2]]}'},
    ],
)
def test_anything_else_goes_to_the_engine_as_it_came(body: dict) -> None:
    assert _single_row(body, FEATURES) is body


def test_a_feature_named_like_an_envelope_is_a_feature() -> None:
    body = {"instances": [[1.0, 2.0]]}
    assert _single_row(body, frozenset({"instances"})) is body


def test_predictions_keep_the_float32_digits_only() -> None:
    import numpy as np
    from inference_component.request_parsing import _float32_digits

    raw = [float(np.float32(151.83592)), float(np.float32(0.1)), 3.0]
    assert raw[0] == 151.83592224121094  # what the engine hands over
    short = _float32_digits([{"value": v} for v in raw])
    assert [p["value"] for p in short] == [151.83592, 0.1, 3.0]
    assert [np.float32(p["value"]) for p in short] == [np.float32(v) for v in raw]  # the same answer
    probs = {"0": float(np.float32(0.3)), "1": float(np.float32(0.7))}
    (cls,) = _float32_digits([{"label": 1, "class": "b", "probabilities": probs}])
    assert cls == {"label": 1, "class": "b", "probabilities": {"0": 0.3, "1": 0.7}}
    odd = [{"value": "not a number"}]
    assert _float32_digits(odd) is odd
