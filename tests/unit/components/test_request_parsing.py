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
