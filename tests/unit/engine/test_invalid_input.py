"""Every kind of bad input raises InvalidInput with its code and a message a person can act on."""

from __future__ import annotations

import json
import random

import pytest

from edge_runtime.inference import CODES, Engine, InvalidInput
from tests.unit.ml.helpers import Built


@pytest.fixture(scope="module")
def engine(models: dict[str, Built]) -> Engine:
    return Engine.load(models["diabetes"].out_dir, max_batch=4, max_payload_bytes=4096)


@pytest.fixture(scope="module")
def row(engine: Engine) -> list[float]:
    return [0.01 * (i + 1) for i in range(len(engine.features))]


@pytest.fixture(scope="module")
def record(engine: Engine, row: list[float]) -> dict[str, float]:
    return dict(zip(engine.features, row, strict=True))


def _with(row: list, index: int, value: object) -> list:
    out = list(row)
    out[index] = value
    return out


CASES = [
    ("not_json", lambda r, d: b"\xff\xfe[1]", "not UTF-8"),
    ("not_json", lambda r, d: "{not json", r"not valid JSON: .* \(line 1, column 2\)"),
    ("not_json", lambda r, d: {"body": "[1, 2"}, "not valid JSON"),
    ("bad_shape", lambda r, d: "42", "payload is a JSON number; send a record"),
    ("bad_shape", lambda r, d: None, "payload is a JSON null"),
    ("bad_shape", lambda r, d: {"body": 5}, "payload is a JSON number"),
    ("bad_shape", lambda r, d: [d, r], "all records .* or all rows"),
    ("empty", lambda r, d: [], "no rows"),
    ("empty", lambda r, d: {"rows": []}, "no rows"),
    ("ambiguous_payload", lambda r, d: {"rows": [r], "records": [d]}, "several of records, rows"),
    ("batch_too_large", lambda r, d: [r] * 5, "batch has 5 rows, the limit is 4"),
    ("payload_too_large", lambda r, d: json.dumps([r] * 200), "the limit is 4096"),
    ("wrong_length", lambda r, d: r[:-1], "row has 9 values, the model takes 10 in this order: 'age', 'sex'"),
    ("wrong_length", lambda r, d: [r, [*r, 1.0]], "row 1: row has 11 values"),
    ("missing_feature", lambda r, d: {k: v for k, v in d.items() if k != "bmi"}, "missing feature 'bmi'"),
    (
        "unknown_feature",
        lambda r, d: {**d, "colour": 1},
        "unknown feature 'colour'; the model's features are",
    ),
    ("wrong_type", lambda r, d: _with(r, 1, "1.5"), "feature 'sex' must be a number, got string '1.5'"),
    ("wrong_type", lambda r, d: _with(r, 0, True), "feature 'age' must be a number, got boolean"),
    ("wrong_type", lambda r, d: {**d, "bp": [1]}, "feature 'bp' must be a number, got array"),
    ("wrong_type", lambda r, d: [r, _with(r, 3, {})], "row 1: feature 'bp' must be a number, got object"),
    (
        "non_finite",
        lambda r, d: json.dumps(r).replace("0.01", "Infinity", 1),
        "outside float32's finite range",
    ),
    ("non_finite", lambda r, d: _with(r, 2, 1e39), "feature 'bmi' = 1e\\+39 is outside"),
]


@pytest.mark.parametrize(("code", "make", "message"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input(engine: Engine, row: list, record: dict, code: str, make, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        engine.predict(make(row, record))
    assert info.value.code == code
    assert info.value.to_dict() == {"code": code, "message": str(info.value)}


def test_every_code_is_covered() -> None:
    covered = {c[0] for c in CASES} | {"missing_value"}
    assert covered == set(CODES)


def test_missing_values_can_be_refused(models: dict[str, Built], row: list) -> None:
    strict = Engine.load(models["diabetes"].out_dir, allow_missing=False)
    for payload in (_with(row, 4, None), json.dumps(_with(row, 4, None)).replace("null", "NaN")):
        with pytest.raises(
            InvalidInput, match=r"feature 's1' is (null|NaN) and missing values are not allowed"
        ) as e:
            strict.predict(payload)
        assert e.value.code == "missing_value"
    lenient = Engine.load(models["diabetes"].out_dir)
    assert lenient.predict(_with(row, 4, None))["predictions"][0]["value"] == pytest.approx(
        lenient.predict(_with(row, 4, float("nan")))["predictions"][0]["value"]
    )


def test_nothing_but_invalid_input_escapes(engine: Engine, row: list, record: dict) -> None:
    """Random junk and mutations of valid payloads: an answer or InvalidInput, never anything else."""
    rng = random.Random(3)
    atoms = [None, True, "x", "", 1, -1.5, 1e308, [], {}, [[]], {"body": None}, b"\x00", "[", "{}", "null"]
    answered = refused = 0
    for _ in range(3000):
        choice = rng.random()
        if choice < 0.3:
            payload = rng.choice(atoms)
        elif choice < 0.6:
            payload = _with(row, rng.randrange(len(row)), rng.choice(atoms))
        elif choice < 0.8:
            payload = {**record, rng.choice([*record, "body", "rows"]): rng.choice(atoms)}
        else:
            text = json.dumps(rng.choice([row, record, {"instances": [row]}]))
            cut = rng.randrange(len(text))
            payload = text[:cut] + rng.choice(["", "]", "}", ",", '"', "x"]) + text[cut + 1 :]
        try:
            engine.predict(payload)
            answered += 1
        except InvalidInput as exc:
            assert exc.code in CODES and str(exc)
            refused += 1
    assert answered > 50 and refused > 500


class _Int(int):
    """An int subclass: the general path takes it as its float value, the fast path hands it over."""


def test_the_single_row_fast_path_takes_what_the_general_path_takes(engine: Engine, row: list) -> None:
    """Values of every type in a single row (and record): the fast path's answer or error is the
    general path's, so its cheaper type check lets no bool, numpy float32 or Decimal through."""
    from decimal import Decimal

    import numpy as np

    values = [0.5, 3, -2.0, _Int(2), np.float64(0.25), True, False, np.float32(0.5), Decimal("0.5"), "1"]
    values += [None, float("nan"), float("inf"), 1e39, 10**400]
    fast_taken = 0
    for value in values:
        for payload in (_with(row, 3, value), [value] * len(row)):
            for shape in (payload, dict(zip(engine.features, payload, strict=True))):
                try:
                    want = engine._predict_general(shape)
                except InvalidInput as exc:
                    with pytest.raises(InvalidInput) as got:
                        engine.predict(shape)
                    assert (got.value.code, str(got.value)) == (exc.code, str(exc)), shape
                    continue
                assert engine.predict(shape) == want, shape
                fast_taken += type(value) in (float, int)
    assert fast_taken >= 8  # the plain floats and ints did run (and agree) on the fast path
