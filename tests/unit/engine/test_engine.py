"""The edge engine: accepted payload shapes, outputs per task, loading checks, threads."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.inference import Engine, ModelLoadError
from tests.unit.ml.helpers import Built


def _golden(b: Built) -> dict:
    return json.loads((b.out_dir / "golden.json").read_text())


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer", "wine"])
def test_every_payload_shape_gives_the_golden_answer(models: dict[str, Built], name: str) -> None:
    b = models[name]
    engine = Engine.load(b.out_dir, accelerated=False)  # golden.json holds the standard engine's answers
    golden = _golden(b)
    row, want = golden["rows"][0], golden["expected"][0]
    record = dict(zip(golden["features"], row, strict=True))
    shapes = [
        row,
        record,
        json.dumps(row),
        json.dumps(record).encode(),
        [row],
        [record],
        {"instances": [row]},
        {"records": [record], "id": "req-1"},
        {"rows": [row]},
        {"features": record},
        {"body": json.dumps(record)},
        {"body": json.dumps({"instances": [row]})},
        json.dumps({"body": json.dumps(row)}),
        tuple(row),
        {"rows": [tuple(row)]},
    ]
    for payload in shapes:
        response = engine.predict(payload)
        assert response["predictions"] == [want], payload
        assert response["model"] == {"name": b.manifest["name"], "version": None}
    batch = engine.predict({"rows": golden["rows"]})["predictions"]
    assert batch == golden["expected"]


def test_regression_output(models: dict[str, Built]) -> None:
    engine = Engine.load(models["diabetes"].out_dir)
    (pred,) = engine.predict(_golden(models["diabetes"])["rows"][1])["predictions"]
    assert set(pred) == {"value"} and isinstance(pred["value"], float)


def test_classification_output_uses_original_labels(models: dict[str, Built]) -> None:
    engine = Engine.load(models["wine"].out_dir)
    (pred,) = engine.predict(_golden(models["wine"])["rows"][0])["predictions"]
    assert set(pred) == {"label", "class", "probabilities"}
    assert pred["class"] == ["class_0", "class_1", "class_2"][pred["label"]]
    assert list(pred["probabilities"]) == ["class_0", "class_1", "class_2"]
    assert sum(pred["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert max(pred["probabilities"], key=pred["probabilities"].get) == pred["class"]
    binary = Engine.load(models["breast_cancer"].out_dir)
    (pred,) = binary.predict(_golden(models["breast_cancer"])["rows"][0])["predictions"]
    assert list(pred["probabilities"]) == ["0", "1"] and pred["class"] in (0, 1)


def test_null_is_a_missing_value_and_matches_nan(models: dict[str, Built]) -> None:
    engine = Engine.load(models["diabetes"].out_dir)
    row = list(_golden(models["diabetes"])["rows"][0])
    row[2] = None
    via_null = engine.predict(row)["predictions"]
    via_nan = engine.predict(json.dumps(row).replace("null", "NaN"))["predictions"]
    x = np.array([[np.nan if v is None else v for v in row]], dtype=np.float32)
    assert via_null == via_nan == engine.predict_matrix(x)


def test_model_version_comes_from_the_manifest(models: dict[str, Built], tmp_path: Path) -> None:
    shutil.copytree(models["wine"].out_dir, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["model_version"] = "1.0.7"
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    engine = Engine.load(tmp_path / "m")
    assert engine.version == "1.0.7"
    assert engine.predict(_golden(models["wine"])["rows"][0])["model"]["version"] == "1.0.7"


def _copy(models: dict[str, Built], tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(models["breast_cancer"].out_dir, target)
    return target


def test_digest_mismatch_is_refused(models: dict[str, Built], tmp_path: Path) -> None:
    model = _copy(models, tmp_path)
    data = bytearray((model / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (model / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=r"SHA-256 .* does not match model.json"):
        Engine.load(model)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("features"), "missing keys features"),
        (lambda m: m.update(format_version=99), "format_version 99 is not supported"),
        (lambda m: m.update(input_name="x"), "model.json says 'x'"),
        (lambda m: m.update(features=m["features"][:-1]), "model takes 30 features, model.json lists 29"),
        (lambda m: m.update(classes=[0, 1, 2]), "2 probabilities, model.json has 3 classes"),
    ],
)
def test_inconsistent_manifest_is_refused(
    models: dict[str, Built], tmp_path: Path, edit, message: str
) -> None:
    model = _copy(models, tmp_path)
    manifest = json.loads((model / "model.json").read_text())
    edit(manifest)
    (model / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=message):
        Engine.load(model)


def test_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read the manifest"):
        Engine.load(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        Engine.load(tmp_path)


def test_threads_get_the_same_answers(models: dict[str, Built]) -> None:
    """Per-thread IOBindings: concurrent single-row calls must never mix up buffers."""
    b = models["wine"]
    engine = Engine.load(b.out_dir)
    rows = [
        list(map(float, r)) for r in np.random.default_rng(1).normal(size=(64, len(engine.features))) * 3 + 5
    ]
    expected = [engine.predict(r)["predictions"][0] for r in rows]
    failures: list[str] = []
    barrier = threading.Barrier(4)

    def worker(offset: int) -> None:
        barrier.wait()
        for i in range(400):
            k = (i * 7 + offset) % len(rows)
            got = engine.predict(rows[k])["predictions"][0]
            if got != expected[k]:
                failures.append(f"thread {offset} row {k}: {got} != {expected[k]}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert len({p["class"] for p in expected}) > 1  # the rows really differ
