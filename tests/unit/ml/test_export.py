"""export_model: parity for every task, early stopping, manifest, golden set, failure paths."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import xgboost as xgb

from edge_runtime.inference import Engine
from pipeline.ml.exceptions import ExportFailed, InvalidDataset, MLError, ParityFailed
from pipeline.ml.export import Tolerance, export_model, parity_report
from tests.unit.ml.helpers import Built, build

MANIFEST_KEYS = {
    "format_version", "name", "task", "features", "target", "input_name", "output_names",
    "classes", "metrics", "parity", "sha256", "source",
}  # fmt: skip


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer", "wine"])
def test_parity_holds_and_manifest_is_complete(built: dict[str, Built], name: str) -> None:
    b = built[name]
    m = b.manifest
    assert set(m) >= MANIFEST_KEYS
    assert m["parity"]["passed"] is True
    assert m["parity"]["rows"] == len(b.data.validation_csv.read_text().splitlines()) - 1
    assert 0 <= m["parity"]["max_abs_diff"] <= m["parity"]["tolerance"]["abs"] + 1e-4 * 400
    assert m["sha256"] == hashlib.sha256((b.out_dir / "model.onnx").read_bytes()).hexdigest()
    assert json.loads((b.out_dir / "model.json").read_text()) == m
    onnx.checker.check_model(onnx.load(str(b.out_dir / "model.onnx")))


def test_regression_metrics_and_outputs(built: dict[str, Built]) -> None:
    m = built["diabetes"].manifest
    assert m["classes"] is None and m["output_names"] == ["variable"]
    assert set(m["metrics"]) == {"rmse", "mae", "r2"}
    assert 30 < m["metrics"]["rmse"] < 90 and m["metrics"]["r2"] > 0.1


def test_classifier_metrics_and_string_classes(built: dict[str, Built]) -> None:
    binary, multi = built["breast_cancer"].manifest, built["wine"].manifest
    assert binary["classes"] == [0, 1]
    assert multi["classes"] == ["class_0", "class_1", "class_2"]
    for m in (binary, multi):
        assert m["output_names"] == ["label", "probabilities"]
        assert {"accuracy", "f1", "logloss", "auc"} <= set(m["metrics"])
        assert m["metrics"]["accuracy"] > 0.85


def test_onnx_matches_xgboost_on_rows_with_missing_values(built: dict[str, Built]) -> None:
    """NaN must follow each split's learned default branch in both runtimes."""
    b = built["diabetes"]
    booster = xgb.Booster()
    booster.load_model(str(b.model_dir / "xgboost-model.json"))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, size=(64, len(b.manifest["features"]))).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    want = booster.predict(xgb.DMatrix(x, missing=np.nan, feature_names=b.manifest["features"]))
    got = [p["value"] for p in Engine.load(b.out_dir).predict_matrix(x)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_golden_set_is_what_the_engine_answers(built: dict[str, Built]) -> None:
    b = built["wine"]
    golden = json.loads((b.out_dir / "golden.json").read_text())
    assert golden["features"] == b.manifest["features"] and golden["task"] == "multiclass"
    assert 1 <= len(golden["rows"]) <= 10 and len(golden["rows"]) == len(golden["expected"])
    standard = Engine.load(b.out_dir, accelerated=False)  # golden.json holds the standard engine's answers
    assert standard.predict({"rows": golden["rows"]})["predictions"] == golden["expected"]
    assert set(golden["tolerance"]) == {"abs", "rel"}


def test_early_stopped_model_is_sliced_and_keeps_parity(tmp_path: Path) -> None:
    """Early stopping on a large eta stops well before num_round; only best_iteration+1 trees ship."""
    b = build(tmp_path, "diabetes", num_round=200, eta=0.3, early_stopping_rounds=5)
    training = json.loads((b.model_dir / "training.json").read_text())
    booster = xgb.Booster()
    booster.load_model(str(b.model_dir / "xgboost-model.json"))
    assert 1 <= training["best_iteration"] < 100  # stopped early, and not at the first round
    assert booster.num_boosted_rounds() == training["best_iteration"] + 1
    assert (
        b.manifest["parity"]["passed"]
        and b.manifest["source"]["best_iteration"] == training["best_iteration"]
    )
    node = onnx.load(str(b.out_dir / "model.onnx")).graph.node[0]
    tree_ids = next(a.ints for a in node.attribute if a.name == "nodes_treeids")
    assert len(set(tree_ids)) == training["best_iteration"] + 1


def test_tiny_tolerance_fails_parity_and_writes_nothing(built: dict[str, Built], tmp_path: Path) -> None:
    b = built["diabetes"]
    out = tmp_path / "out"
    with pytest.raises(ParityFailed, match=r"disagree on \d+ of \d+ values.*tolerance abs 1e-12") as info:
        export_model(b.model_dir, b.data.validation_csv, out, tolerance=1e-12)
    assert info.value.parity["passed"] is False and info.value.parity["max_abs_diff"] > 1e-12
    assert isinstance(info.value, MLError)
    assert not (out / "model.onnx").exists()


def test_parity_report_flags_shape_nan_and_offsets() -> None:
    tol = Tolerance()
    ok = parity_report(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]), tol)
    assert ok["passed"] and ok["failing"] == 0
    assert not parity_report(np.array([1.0, np.nan]), np.array([1.0, 2.0]), tol)["passed"]
    assert not parity_report(np.array([1.0]), np.array([1.0, 2.0]), tol)["passed"]
    off = parity_report(np.array([100.0, 0.5]), np.array([100.1, 0.5]), tol)
    assert off["failing"] == 1 and off["max_abs_diff"] == pytest.approx(0.1)


def test_tolerance_accepts_number_dict_and_default() -> None:
    assert Tolerance.of(None) == Tolerance()
    assert Tolerance.of(1e-3) == Tolerance(abs=1e-3, rel=1e-3)
    assert Tolerance.of({"abs": 1, "rel": 2}) == Tolerance(abs=1.0, rel=2.0)


def test_missing_training_output_is_export_failed(tmp_path: Path, built: dict[str, Built]) -> None:
    with pytest.raises(ExportFailed, match=r"expected xgboost-model.json and training.json"):
        export_model(tmp_path, built["wine"].data.validation_csv, tmp_path / "out")


def test_corrupt_booster_is_export_failed(tmp_path: Path, built: dict[str, Built]) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(built["wine"].model_dir, model_dir)
    (model_dir / "xgboost-model.json").write_text("{not a model")
    with pytest.raises(ExportFailed, match="XGBoost cannot load it"):
        export_model(model_dir, built["wine"].data.validation_csv, tmp_path / "out")


def test_validation_without_target_is_invalid_dataset(tmp_path: Path, built: dict[str, Built]) -> None:
    b = built["breast_cancer"]
    csv = tmp_path / "v.csv"
    lines = b.data.validation_csv.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "target"]
    csv.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n")
    with pytest.raises(InvalidDataset, match=r"no target column 'target'"):
        export_model(b.model_dir, csv, tmp_path / "out")


def test_validation_with_unseen_label_is_invalid_dataset(tmp_path: Path, built: dict[str, Built]) -> None:
    b = built["wine"]
    csv = tmp_path / "v.csv"
    csv.write_text(b.data.validation_csv.read_text().replace("class_1", "class_9"))
    with pytest.raises(InvalidDataset, match="labels the model was not trained on: class_9"):
        export_model(b.model_dir, csv, tmp_path / "out")
