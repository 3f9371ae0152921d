"""The accelerated path: the mlops_edge.trees library's ABI, parity on all three tasks (NaN, +inf,
-inf included) with XGBoost and with the standard model, the export's gate, and the fallbacks.

Small models (8 rounds) and one library build per session, so the file runs in seconds.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_runtime.inference import Engine, accel
from pipeline.ml import perfect_trees
from tests.unit.ml.helpers import Built, build

ROOT = Path(__file__).resolve().parents[3]
F32_MAX = float(np.finfo(np.float32).max)
TASKS = {"diabetes": "regression", "breast_cancer": "binary", "wine": "multiclass"}


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trees.c compiled as scripts/setup and the component's Install step compile it."""
    return accel.build(tmp_path_factory.mktemp("accel") / accel.LIBRARY_NAME)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, library: Path) -> dict[str, Built]:
    """The three demo tasks exported where the library is loadable (so with the variant)."""
    root = tmp_path_factory.mktemp("accel-models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(accel.ENV_VAR, str(library))
        return {name: build(root, name, num_round=8) for name in TASKS}


@pytest.fixture
def with_library(monkeypatch: pytest.MonkeyPatch, library: Path) -> Path:
    monkeypatch.setenv(accel.ENV_VAR, str(library))
    return library


@pytest.fixture
def without_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(accel.ENV_VAR, raising=False)
    monkeypatch.setattr(accel, "default_library_path", lambda: tmp_path / "none" / accel.LIBRARY_NAME)


# -- the ABI guard ----------------------------------------------------------------------------

# Run in a child process: a wrong slot in trees.c's declared C API would crash, not fail. Hand-made
# one-split trees, so the expected answers follow from XGBoost's rule alone: x < 0.5 is "yes"
# (leaf 1), NaN follows the node's default ("yes" here), +inf is "no", -inf is "yes".
ABI_PROBE = r"""
import json, sys
import numpy as np, onnxruntime as ort
from pipeline.ml.perfect_trees import PerfectTrees, build_model
yes = 1 << 31
def trees(post, k, targets, leaves, base):
    n = len(targets)
    return PerfectTrees(1, k, post, base, [1] * n, targets, [0 | yes] * n, [0.5] * n, leaves)
cases = {
    "regression": (trees(0, 1, [0, 0], [10.0, 20.0, 1.0, 2.0], [0.5]), ["variable"]),
    "binary": (trees(1, 1, [0], [-1.0, 1.0], [0.0]), ["label", "probabilities"]),
    "multiclass": (trees(2, 3, [0, 1, 2], [0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0] * 3), ["label", "probabilities"]),
    "refused": (trees(0, 1, [0], [1.0], [0.0]), ["variable"]),  # 1 leaf for a depth-1 tree
}
opts = ort.SessionOptions()
opts.register_custom_ops_library(sys.argv[1])
x = np.array([[0.0], [1.0], [np.nan], [np.inf], [-np.inf]], dtype=np.float32)
out = {}
for name, (t, names) in cases.items():
    s = ort.InferenceSession(build_model(t, "input", names, 15), opts, providers=["CPUExecutionProvider"])
    out[name] = [np.asarray(o).tolist() for o in s.run(None, {"input": x})]
print(json.dumps(out))
"""


def test_pinned_onnxruntime_was_checked_against_the_declarations() -> None:
    assert ort.__version__ in accel.CHECKED_ORT_VERSIONS, (
        f"onnxruntime {ort.__version__} is pinned but trees.c's C API declarations were checked "
        f"against {accel.CHECKED_ORT_VERSIONS}: compare its ORT_SLOT_* positions and OrtCustomOp "
        "with that release's onnxruntime_c_api.h, then list the version in CHECKED_ORT_VERSIONS"
    )


def test_library_reports_the_api_version_it_was_written_for(library: Path) -> None:
    lib = ctypes.CDLL(str(library))
    lib.mlops_edge_trees_api_version.restype = ctypes.c_uint32
    assert lib.mlops_edge_trees_api_version() == accel.API_VERSION
    assert hasattr(lib, "RegisterCustomOps")


def test_library_runs_in_the_pinned_onnxruntime(library: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", ABI_PROBE, str(library)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, f"the probe died ({done.returncode}): {done.stderr[-2000:]}"
    out = json.loads(done.stdout)
    # two trees, each: yes -> second leaf; rows 0, NaN, -inf are "yes"
    assert out["regression"] == [[[22.5], [11.5], [22.5], [11.5], [22.5]]]
    p = 1.0 / (1.0 + math.exp(-1.0))
    labels, probs = out["binary"]
    assert labels == [1, 0, 1, 0, 1]
    assert np.allclose(probs, [[1 - p, p], [p, 1 - p], [1 - p, p], [p, 1 - p], [1 - p, p]], atol=1e-6)
    labels, probs = out["multiclass"]  # "yes" favours class 0, "no" class 1
    assert labels == [0, 1, 0, 1, 0]
    e = math.e / (math.e + 2.0)
    assert np.allclose(probs[0], [e, (1 - e) / 2, (1 - e) / 2], atol=1e-6)
    assert all(math.isnan(v[0]) for v in out["refused"][0])  # refused attributes answer NaN


# -- parity -----------------------------------------------------------------------------------


def _hard_rows(b: Built) -> np.ndarray:
    """Validation rows, plus copies with NaN, +inf and -inf in every feature in turn."""
    import pandas as pd

    frame = pd.read_csv(b.data.validation_csv)
    x = frame[b.manifest["features"]].to_numpy(dtype=np.float32)
    extra = np.repeat(np.nan_to_num(x[:1], nan=0.0), 3 * x.shape[1], axis=0)
    for j in range(x.shape[1]):
        extra[3 * j : 3 * j + 3, j] = (np.nan, np.inf, -np.inf)
    return np.concatenate([x, extra])


@pytest.mark.parametrize("name", list(TASKS))
def test_export_ships_the_variant_with_its_parity(exported: dict[str, Built], name: str) -> None:
    b = exported[name]
    entry = b.manifest["accelerated"]
    assert entry["file"] == "model.accel.onnx" and (b.out_dir / entry["file"]).is_file()
    assert entry["parity"]["passed"] and entry["parity_vs_standard"]["passed"]
    assert entry["parity_vs_standard"]["rows"] > entry["parity"]["rows"]  # the NaN/inf probes
    assert json.loads((b.out_dir / "model.json").read_text())["accelerated"] == entry


@pytest.mark.parametrize("name", list(TASKS))
def test_accelerated_matches_standard_and_xgboost(
    exported: dict[str, Built], with_library: Path, name: str
) -> None:
    import xgboost as xgb

    b = exported[name]
    fast, standard = Engine.load(b.out_dir), Engine.load(b.out_dir, accelerated=False)
    assert (fast.engine, standard.engine) == ("accelerated", "standard")
    x = _hard_rows(b)
    assert np.isnan(x).any() and np.isinf(x).any()
    got, want = fast.predict_matrix(x), standard.predict_matrix(x)
    key = "value" if TASKS[name] == "regression" else "probabilities"

    def values(preds: list[dict]) -> np.ndarray:
        return np.array([[p[key]] if key == "value" else list(p[key].values()) for p in preds])

    assert np.allclose(values(got), values(want), rtol=1e-4, atol=1e-5)
    # XGBoost refuses infinities; to it they are the largest finite float32 values.
    booster = xgb.Booster()
    booster.load_model(str(b.model_dir / "xgboost-model.json"))
    native = booster.predict(
        xgb.DMatrix(np.clip(x, -F32_MAX, F32_MAX), missing=np.nan), validate_features=False
    )
    native = np.asarray(native).reshape(len(x), -1)
    if TASKS[name] == "binary":
        native = np.column_stack([1 - native[:, 0], native[:, 0]])
    assert np.allclose(values(got), native, rtol=1e-4, atol=1e-5)
    if TASKS[name] != "regression":
        assert [p["label"] for p in got] == [p["label"] for p in want]


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_missing_values_follow_each_nodes_default(library: Path, task: str) -> None:
    """Trained with 20% missing values, so nodes send NaN left and right; vs XGBoost and ONNX."""
    import xgboost as xgb

    from pipeline.ml.export import convert

    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = np.nan
    signal = np.nan_to_num(x[:, 0], nan=1.5) - np.nan_to_num(x[:, 1], nan=-1.0)
    kw = {"n_estimators": 24, "max_depth": 4, "tree_method": "hist", "n_jobs": 1}
    if task == "regression":
        model = xgb.XGBRegressor(**kw).fit(x, 3 * signal)
    else:
        y = (signal > 0).astype(int) + (task == "multiclass") * (np.nan_to_num(x[:, 2]) > 0.5)
        model = xgb.XGBClassifier(**kw).fit(x, y)
    booster = model.get_booster()
    flags = [
        d
        for t in json.loads(bytes(booster.save_raw("json")))["learner"]["gradient_booster"]["model"]["trees"]
        for d in t["default_left"]
    ]
    assert 0 < sum(flags) < len(flags)  # both directions occur
    names = ["variable"] if task == "regression" else ["label", "probabilities"]
    trees = perfect_trees.from_booster(booster, task, x)
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(library))
    fast = ort.InferenceSession(perfect_trees.build_model(trees, "input", names, 15), opts)
    standard = ort.InferenceSession(convert(model, 5))
    rows = np.concatenate([x, np.where(rng.random(x.shape) < 0.3, np.inf, -np.inf).astype(np.float32)])
    got, want = fast.run(None, {"input": rows}), standard.run(None, {"input": rows})
    assert np.allclose(got[-1], want[-1], rtol=1e-4, atol=1e-5)
    native = np.asarray(booster.predict(xgb.DMatrix(np.clip(rows, -F32_MAX, F32_MAX), missing=np.nan)))
    fast_values = got[-1][:, -1] if task == "binary" else got[-1].reshape(native.shape)
    assert np.allclose(fast_values, native, rtol=1e-4, atol=1e-5)
    if task != "regression":
        assert (got[0] == want[0]).all()
    # One row at a time takes the kernel's single-row walks (two chunks at once when NaN-free).
    singles = [fast.run(None, {"input": rows[i : i + 1]})[-1][0] for i in range(0, len(rows), 15)]
    assert np.array_equal(np.array(singles), got[-1][::15])


def test_answers_say_which_engine_ran(exported: dict[str, Built], with_library: Path) -> None:
    b = exported["diabetes"]
    row = json.loads((b.out_dir / "golden.json").read_text())["rows"][0]
    assert Engine.load(b.out_dir).predict(row)["engine"] == "accelerated"
    assert Engine.load(b.out_dir, accelerated=False).predict({"rows": [row]})["engine"] == "standard"


# -- fallbacks --------------------------------------------------------------------------------


def test_no_library_runs_the_standard_model(exported: dict[str, Built], without_library: None) -> None:
    engine = Engine.load(exported["wine"].out_dir)
    assert engine.engine == "standard" and "not built on this machine" in engine.fallback_reason
    row = json.loads((exported["wine"].out_dir / "golden.json").read_text())["rows"][0]
    assert engine.predict(row)["engine"] == "standard"


def test_variant_with_a_wrong_digest_is_not_run(
    exported: dict[str, Built], with_library: Path, tmp_path: Path
) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(exported["breast_cancer"].out_dir, model)
    data = bytearray((model / "model.accel.onnx").read_bytes())
    data[-1] ^= 0xFF
    (model / "model.accel.onnx").write_bytes(bytes(data))
    engine = Engine.load(model)
    assert engine.engine == "standard" and "SHA-256" in engine.fallback_reason


def test_export_without_the_library_ships_no_variant(
    exported: dict[str, Built], without_library: None, tmp_path: Path
) -> None:
    from pipeline.ml.export import export_model

    b = exported["diabetes"]
    manifest = export_model(b.model_dir, b.data.validation_csv, tmp_path / "out")
    assert manifest["accelerated"]["file"] is None
    assert "not built where the model was exported" in manifest["accelerated"]["reason"]
    assert not (tmp_path / "out" / "model.accel.onnx").exists()
    assert Engine.load(tmp_path / "out").engine == "standard"


def test_variant_failing_parity_is_not_shipped(
    exported: dict[str, Built], with_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from pipeline.ml.export import export_model

    convert = perfect_trees.from_booster

    def off_by_a_bit(*args: object) -> perfect_trees.PerfectTrees:
        t = convert(*args)
        return replace(t, base_values=[v + 0.01 for v in t.base_values])

    monkeypatch.setattr(perfect_trees, "from_booster", off_by_a_bit)
    b = exported["diabetes"]
    manifest = export_model(b.model_dir, b.data.validation_csv, tmp_path / "out")
    assert manifest["accelerated"]["file"] is None and "parity" in manifest["accelerated"]["reason"]
    assert manifest["accelerated"]["parity"]["passed"] is False
    assert not (tmp_path / "out" / "model.accel.onnx").exists()


def test_unsupported_models_get_a_reason(tmp_path: Path) -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = x @ rng.normal(size=6) + np.sin(5 * x[:, 0])
    params = {"objective": "reg:squarederror", "tree_method": "hist", "nthread": 1, "min_child_weight": 0}
    deep = xgb.train({**params, "max_depth": 14}, xgb.DMatrix(x, label=y), 2)
    assert "depth" in perfect_trees.unsupported_reason(deep, "regression")
    shallow = xgb.train({**params, "max_depth": 3}, xgb.DMatrix(x, label=y), 2)
    assert perfect_trees.unsupported_reason(shallow, "regression") is None
    assert "lossguide" in perfect_trees.unsupported_reason(
        shallow, "regression", {"grow_policy": "lossguide"}
    )
    cats = np.array(["a", "b", "c"])[rng.integers(0, 3, 400)]
    import pandas as pd

    frame = pd.DataFrame({"c": pd.Categorical(cats), "v": x[:, 0]})
    categorical = xgb.train(
        {**params, "max_depth": 3}, xgb.DMatrix(frame, label=y, enable_categorical=True), 2
    )
    assert "categorical" in perfect_trees.unsupported_reason(categorical, "regression")
    gamma = xgb.train(
        {**params, "objective": "reg:gamma", "max_depth": 3}, xgb.DMatrix(x, label=np.abs(y) + 1), 2
    )
    assert "objective" in perfect_trees.unsupported_reason(gamma, "regression")
