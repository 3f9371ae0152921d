"""The accelerated kernel's batch walks agree with its single-row walks to the bit, at depths 4-6.

Batches of sixteen rows or more take trees.c's vector walk where the CPU has AVX-512 (levels 0-3
from transposed rows, levels 4-5 by gathers, depth 6 over two permute registers); a single row
always takes the scalar walk. Both must send NaN where each node says and add every tree in the
booster's order, so the same row gets the same bits either way. Without AVX-512 both are scalar
and the test still holds (it then guards the scalar walks only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_runtime.inference import accel
from pipeline.ml import perfect_trees


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return accel.build(tmp_path_factory.mktemp("accel-vector") / accel.LIBRARY_NAME)


@pytest.mark.parametrize(
    ("task", "depth"), [("regression", 6), ("binary", 5), ("multiclass", 6), ("binary", 4)]
)
def test_batch_answers_equal_single_row_answers(library: Path, task: str, depth: int) -> None:
    import xgboost as xgb

    from pipeline.ml.export import convert

    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, 7)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    signal = np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1], nan=-1.0) + 0.5 * np.nan_to_num(x[:, 2])
    kw = {"n_estimators": 17, "max_depth": depth, "tree_method": "hist", "n_jobs": 1}  # 17: a partial chunk
    if task == "regression":
        model = xgb.XGBRegressor(**kw).fit(x, 3 * signal)
    else:
        y = (signal > 0).astype(int) + (task == "multiclass") * (np.nan_to_num(x[:, 3]) > 0.5)
        model = xgb.XGBClassifier(**kw).fit(x, y)
    names = ["variable"] if task == "regression" else ["label", "probabilities"]
    trees = perfect_trees.from_booster(model.get_booster(), task, x)
    assert max(trees.tree_depths) == depth  # the depth under test, not a shallower model
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(library))
    fast = ort.InferenceSession(perfect_trees.build_model(trees, "input", names, 15), opts)
    # 83 rows: five groups of sixteen and three rows past them; infinities in some rows
    rows = x[:83].copy()
    rows[::9, 4] = np.inf
    rows[1::9, 5] = -np.inf
    batch = fast.run(None, {"input": rows})
    singles = [fast.run(None, {"input": rows[i : i + 1]}) for i in range(len(rows))]
    for k in range(len(batch)):
        assert np.array_equal(np.concatenate([s[k] for s in singles]), batch[k])
    standard = ort.InferenceSession(convert(model, 7)).run(None, {"input": rows})
    assert np.allclose(batch[-1], standard[-1], rtol=1e-4, atol=1e-5)
