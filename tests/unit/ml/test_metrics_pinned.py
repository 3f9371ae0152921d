"""train.py's validation metrics (what SageMaker shows) and pipeline.ml.metrics (what the quality
gate reads, from the ONNX model's outputs) must be the same numbers under the same names.

train.py cannot import the package (it runs alone in the SageMaker container), so the two are kept
equal by this test instead of by sharing code.
"""

from __future__ import annotations

import numpy as np
import pytest

from lambdas.core.configure import METRIC_NAMES
from pipeline.ml import metrics
from pipeline.training import train as train_py

RNG = np.random.default_rng(7)


def _proba(n: int, k: int) -> np.ndarray:
    raw = RNG.random((n, k)).astype(np.float32)
    return raw / raw.sum(axis=1, keepdims=True)


CASES = {
    "regression": ("regression", RNG.normal(size=40), RNG.normal(size=40)),
    "binary": ("binary", RNG.integers(0, 2, 40).astype(float), _proba(40, 2)),
    "multiclass": ("multiclass", RNG.integers(0, 3, 60).astype(float), _proba(60, 3)),
    # A class that is neither present nor predicted: macro-F1 must average over every class alike.
    "multiclass, class 2 absent": (
        "multiclass",
        RNG.integers(0, 2, 30).astype(float),
        np.column_stack([_proba(30, 2) * 0.9, np.full(30, 0.1, dtype=np.float32)]),
    ),
    "binary, one class only": ("binary", np.ones(12), _proba(12, 2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_py_and_the_quality_gate_compute_the_same_metrics(case: str) -> None:
    task, y, output = CASES[case]
    from_train = train_py.compute_metrics(task, y, output)
    from_gate = metrics.compute(task, y, output)
    assert from_train.keys() == from_gate.keys()
    for name, value in from_gate.items():
        assert from_train[name] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name


def test_every_metric_train_py_prints_is_one_sagemaker_is_told_to_read() -> None:
    names = set()
    for task, y, output in CASES.values():
        names |= set(train_py.compute_metrics(task, y, output))
    assert names <= set(METRIC_NAMES)
