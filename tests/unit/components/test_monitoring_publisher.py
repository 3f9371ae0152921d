"""The inference component's monitoring windows (issue 16): what the device counts and publishes.

Against in-memory messaging and a stub engine that reads requests with the engine's own parser,
with a real baseline written by pipeline.ml.baseline; each published window is validated against
pipeline/ml/monitoring-window.schema.json and compared with counting the same rows directly.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
from inference_component.monitoring_publisher import MonitoredEngine, attach, create
from inference_component.service import InferenceService
from inference_component.settings import Settings

from edge_runtime.inference.monitoring import WindowCounter
from edge_runtime.inference.payload import to_matrix
from pipeline.ml.baseline import write_baseline

from .fakes import FakeMessaging

THING = "thing-9"
FEATURES = ["a", "b", "c"]
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "pipeline/ml/monitoring-window.schema.json").read_text()
)


class ParsingEngine:
    """Reads requests with the engine's payload module (so it refuses what the engine refuses) and
    predicts the row sum."""

    manifest: dict[str, Any] = {  # noqa: RUF012 - read-only
        "name": "demo",
        "model_version": "1.0.7",
        "features": FEATURES,
        "task": "regression",
    }

    def predict(self, payload: Any) -> dict[str, Any]:
        index = {n: i for i, n in enumerate(FEATURES)}
        x = to_matrix(payload, FEATURES, index, allow_missing=True, max_batch=4096, max_bytes=1 << 20)
        return {"predictions": [{"value": float(np.nansum(r))} for r in x], "model": {"name": "demo"}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory with the baseline of 500 training rows (the files the model zip carries)."""
    root = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(500, 3)) * [1, 10, 100], columns=FEATURES)
    df["target"] = df.sum(axis=1)
    write_baseline(df, FEATURES, root / "baseline")
    return root


def settings(window_s: float = 1.0, **config: Any) -> Settings:
    return Settings.from_config({"MonitoringWindowSeconds": window_s, **config}, THING)


def published_windows(messaging: FakeMessaging) -> list[dict[str, Any]]:
    topic = f"edge/{THING}/monitoring"
    return [json.loads(p) for channel, t, p in messaging.published if channel == "iot" and t == topic]


def test_a_window_of_served_requests_validates_and_counts_what_the_engine_read(model_dir: Path) -> None:
    messaging = FakeMessaging()
    publisher = create(ParsingEngine(), messaging, settings(), model_dir)
    assert publisher is not None
    engine = MonitoredEngine(ParsingEngine(), publisher)
    service = InferenceService(engine, messaging, settings())
    requests = [
        {"id": "1", "a": 0.5, "b": -3.0, "c": 40.0},  # one record
        {"id": "2", "instances": [[1.0, None, 2.0], [0.1, 0.2, 0.3]]},  # rows, a missing value
        {"id": "3", "records": [{"a": 9, "b": 9, "c": 9}] * 6},  # a batch of records
        {"id": "4", "body": json.dumps({"instances": [[-1, -2, -3]]})},  # a Lambda-style body
        {"id": "5", "instances": [[1.0, "high", True]]},  # refused: two non-numbers
        {"id": "6", "instances": [[1.0, 2.0]]},  # refused: wrong length, not counted
    ]
    answers = [json.loads(service.handle(json.dumps(r).encode())) for r in requests]
    assert [a["ok"] for a in answers] == [True] * 4 + [False] * 2
    assert publisher.drain() == 10
    window = publisher.publish_window()

    jsonschema.validate(window, SCHEMA)
    assert published_windows(messaging) == [window]
    assert window["thing"] == THING and window["model_version"] == "1.0.7"
    assert window["row_count"] == 11  # 10 served rows + the refused row with non-numbers
    rows = [[0.5, -3.0, 40.0], [1.0, np.nan, 2.0], [0.1, 0.2, 0.3]] + [[9, 9, 9]] * 6 + [[-1, -2, -3]]
    expected = WindowCounter(publisher.counter.buckets)
    expected.add(np.asarray(rows, dtype=np.float32))
    for got, want in zip(window["features"], expected.message(THING, "1.0.7")["features"], strict=True):
        assert got["counts"] == want["counts"] and got["missing"] == want["missing"]
        assert got["sum"] == pytest.approx(want["sum"])
    assert [f["non_numeric"] for f in window["features"]] == [0, 1, 1]
    assert window["predictions"]["count"] == 10
    assert window["predictions"]["sum"] == pytest.approx(float(np.nansum(rows)), rel=1e-6)

    empty = publisher.publish_window()  # nothing served since: still published, row_count 0
    jsonschema.validate(empty, SCHEMA)
    assert empty["row_count"] == 0 and empty["window_start"] == window["window_end"]


def test_the_component_publishes_a_window_every_window_seconds(model_dir: Path) -> None:
    """Through ``attach`` as ``serve`` runs it: windows arrive on their own, empty or not."""
    messaging = FakeMessaging()
    engine, stop = attach(ParsingEngine(), messaging, settings(window_s=1), model_dir)
    assert isinstance(engine, MonitoredEngine)
    service = InferenceService(engine, messaging, settings(window_s=1))
    service.handle(b'{"id": "x", "a": 1, "b": 2, "c": 3}')
    try:
        assert messaging.wait_for(lambda p: len(published_windows(messaging)) >= 2, timeout=10)
    finally:
        stop()
    windows = published_windows(messaging)
    for window in windows:
        jsonschema.validate(window, SCHEMA)
    assert sum(w["row_count"] for w in windows) == 1
    assert 0.9 <= _seconds(windows[1]) <= 1.6


def _seconds(window: dict[str, Any]) -> float:
    def parse(text: str) -> float:
        return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + text[19:-1])

    return parse(window["window_end"]) - parse(window["window_start"])


def test_monitoring_off_serves_the_engine_unchanged(model_dir: Path, tmp_path: Path, capsys: Any) -> None:
    engine = ParsingEngine()
    assert attach(engine, FakeMessaging(), settings(window_s=0), model_dir)[0] is engine
    assert attach(engine, FakeMessaging(), settings(), tmp_path)[0] is engine  # no baseline
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "monitoring: off (MonitoringWindowSeconds is 0)",
        "monitoring: off: the model has no baseline/statistics.json (exported without a baseline); "
        "serving as usual",
    ]


def test_baseline_in_another_feature_order_counts_in_the_baselines_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame(rng.normal(size=(200, 3)), columns=["c", "a", "b"])
    write_baseline(df, ["c", "a", "b"], tmp_path / "baseline")
    publisher = create(ParsingEngine(), FakeMessaging(), settings(), tmp_path)
    assert publisher is not None
    MonitoredEngine(ParsingEngine(), publisher).predict({"a": 100.0, "b": 100.0, "c": -100.0})
    publisher.drain()
    window = publisher.counter.message(THING, "v")
    assert [f["name"] for f in window["features"]] == ["c", "a", "b"]
    assert [f["min"] for f in window["features"]] == [-100.0, 100.0, 100.0]


@pytest.mark.parametrize("value", ["soon", -1, 0.5, 1e9, None])
def test_a_bad_window_length_is_a_clear_error(value: Any) -> None:
    with pytest.raises(ValueError, match="MonitoringWindowSeconds must be 0"):
        Settings.from_config({"MonitoringWindowSeconds": value}, THING)


def test_classifier_predictions_count_the_score_and_the_class(model_dir: Path) -> None:
    class Binary(ParsingEngine):
        manifest = {**ParsingEngine.manifest, "task": "binary"}  # noqa: RUF012

        def predict(self, payload: Any) -> dict[str, Any]:
            n = len(super().predict(payload)["predictions"])
            return {
                "predictions": [{"label": 1, "class": "yes", "probabilities": {"no": 0.25, "yes": 0.75}}] * n
            }

    publisher = create(Binary(), FakeMessaging(), settings(), model_dir)
    assert publisher is not None
    MonitoredEngine(Binary(), publisher).predict({"instances": [[1, 2, 3], [4, 5, 6]]})
    publisher.drain()
    predictions = publisher.counter.message(THING, "v")["predictions"]
    assert predictions["count"] == 2 and predictions["sum"] == pytest.approx(1.5)
    assert predictions["class_counts"] == {"yes": 2}
