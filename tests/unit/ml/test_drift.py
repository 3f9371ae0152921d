"""The drift judgement: device windows on the baseline's edges -> constraint_violations.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from edge_runtime.inference.monitoring import Buckets, WindowCounter, bucket_index, count_rows
from pipeline.ml import baseline as bl
from pipeline.ml import drift
from pipeline.ml.datasets import write_demo

T0 = 1_790_000_000.0
WINDOW_ROWS = 60


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list[str], dict, dict]:
    """The diabetes demo's training split and its baseline (10 fractional features, 331 rows)."""
    data = write_demo("diabetes", tmp_path_factory.mktemp("drift"))
    df = pd.read_csv(data.train_csv)
    features = [c for c in df.columns if c != data.target]
    stats, constraints = bl.write_baseline(df, features, tmp_path_factory.mktemp("baseline"))
    return df, features, stats, constraints


def windows(
    training: tuple, thing: str, n: int, *, seed: int, shift: dict | None = None, blank: dict | None = None
) -> list[dict]:
    """``n`` windows of rows drawn from the training rows; ``shift`` adds k std to a feature,
    ``blank`` empties a share of a feature's values."""
    df, features, stats, _ = training
    rng = np.random.default_rng(seed)
    counter = WindowCounter(Buckets.from_statistics(stats))
    out = []
    for i in range(n):
        counter.reset(start=T0 + 300 * i)
        x = df[features].to_numpy()[rng.integers(0, len(df), WINDOW_ROWS)].copy()
        for name, k in (shift or {}).items():
            j = features.index(name)
            x[:, j] += k * df[name].std(ddof=0)
        for name, share in (blank or {}).items():
            x[rng.random(WINDOW_ROWS) < share, features.index(name)] = np.nan
        counter.add(x.astype(np.float32), predictions=x[:, 0] * 10)
        out.append(counter.message(thing, "1.0.0", end=T0 + 300 * (i + 1)))
    return out


def checks(result: drift.ScopeResult) -> list[tuple[str, str]]:
    return [(v["feature_name"], v["constraint_check_type"]) for v in result.violations]


def test_windows_from_the_training_distribution_raise_nothing(training: tuple) -> None:
    _, _, stats, constraints = training
    docs = [w for k in range(3) for w in windows(training, f"core-{k}", 5, seed=k)]
    result = drift.judge(docs, stats, constraints)
    assert result.rejected == []
    assert sorted(result.devices) == ["core-0", "core-1", "core-2"]
    for scope in [*result.devices.values(), result.fleet]:
        assert scope.violations == [], scope.scope
    assert result.fleet.windows == 15 and result.fleet.rows == 15 * WINDOW_ROWS
    assert all(f.distance is not None and f.distance < f.threshold for f in result.fleet.features)


def test_a_two_std_shift_in_one_feature_is_drift_on_that_feature_only(training: tuple) -> None:
    _, _, stats, constraints = training
    calm = windows(training, "core-calm", 2, seed=1)
    moved = windows(training, "core-moved", 2, seed=2, shift={"bmi": 2.0})
    result = drift.judge(calm + moved, stats, constraints)
    assert result.devices["core-calm"].violations == []
    assert checks(result.devices["core-moved"]) == [("bmi", "baseline_drift_check")]
    assert checks(result.fleet) == [("bmi", "baseline_drift_check")]  # half the fleet moved
    assert "Baseline drift distance" in result.fleet.violations[0]["description"]
    report = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    bmi = next(f for f in report["devices"]["core-moved"]["features"] if f["name"] == "bmi")
    assert bmi["distance"] > bmi["threshold"] and len(bmi["observed_fractions"]) == len(
        bmi["baseline_fractions"]
    )
    # Robust compares Deequ's linf_robust: linf_simple less 1.8 sqrt((n + m) / nm)
    n, m = stats["dataset"]["item_count"], 2 * WINDOW_ROWS
    moved_bmi = next(f for f in result.devices["core-moved"].features if f.name == "bmi")
    assert moved_bmi.distance == pytest.approx(moved_bmi.linf_simple - 1.8 * ((n + m) / (n * m)) ** 0.5)
    # one window already shows it
    first = drift.judge(moved[:1], stats, constraints)
    assert checks(first.devices["core-moved"]) == [("bmi", "baseline_drift_check")]


def test_a_completeness_drop_is_a_completeness_check(training: tuple) -> None:
    _, _, stats, constraints = training
    result = drift.judge(windows(training, "core-0", 2, seed=3, blank={"s5": 0.3}), stats, constraints)
    assert checks(result.devices["core-0"]) == [("s5", "completeness_check")]
    assert "Expected: 100.0%" in result.devices["core-0"].violations[0]["description"]


def test_strings_in_a_numeric_feature_are_a_data_type_check(training: tuple) -> None:
    _, features, stats, constraints = training
    counter = WindowCounter(Buckets.from_statistics(stats))
    counter.reset(start=T0)
    counter.add(training[0][features].to_numpy()[:100])
    counter.add_non_numeric("age", rows=1)
    one = drift.judge([counter.message("core-0", "1.0.0", end=T0 + 300)], stats, constraints)
    assert one.fleet.violations == []  # 1 in 101: under datatype_check_threshold (10%)
    counter.add_non_numeric("age", rows=30)
    many = drift.judge([counter.message("core-0", "1.0.0", end=T0 + 300)], stats, constraints)
    assert ("age", "data_type_check") in checks(many.fleet)
    assert "Expected data type: Fractional" in many.fleet.violations[0]["description"]


def test_robust_ignores_a_small_windows_noise_that_simple_reports(training: tuple) -> None:
    _, _, stats, constraints = training
    few = windows(training, "core-0", 1, seed=4)
    for feature in few[0]["features"]:  # 6 rows: a noisy histogram
        feature["counts"] = [c // 10 for c in feature["counts"]]
    simple = json.loads(json.dumps(constraints))
    simple["monitoring_config"]["distribution_constraints"]["comparison_method"] = "Simple"
    assert drift.judge(few, stats, constraints).fleet.violations == []
    assert {c for _, c in checks(drift.judge(few, stats, simple).fleet)} == {"baseline_drift_check"}
    off = json.loads(json.dumps(simple))
    off["monitoring_config"]["evaluate_constraints"] = "Disabled"
    assert drift.judge(few, stats, off).fleet.violations == []


def test_unusable_windows_are_rejected_with_the_reason(training: tuple) -> None:
    _, _, stats, constraints = training
    good = windows(training, "core-0", 1, seed=5)[0]
    stale = dict(good, edges_digest="sha256:" + "0" * 64, thing="core-old")
    short = json.loads(json.dumps(good))
    short["features"][0]["counts"] = [1, 2]
    result = drift.judge([good, stale, short, "{not json", {"thing": "x"}], stats, constraints)
    assert sorted(result.devices) == ["core-0"]
    assert len(result.rejected) == 4
    assert "core-old" in result.rejected[0] and "other bucket edges" in result.rejected[0]
    assert "has 2 counts, the baseline has" in result.rejected[1]
    assert "not valid JSON" in result.rejected[2]
    assert "is a required property" in result.rejected[3]


def test_an_unusable_baseline_is_a_clear_error(training: tuple) -> None:
    _, _, stats, constraints = training
    with pytest.raises(bl.InvalidBaseline, match="baseline constraints: not a valid constraints document"):
        drift.judge([], stats, {"version": 0})
    flat = json.loads(json.dumps(stats))
    flat["features"][0]["numerical_statistics"]["distribution"]["kll"]["buckets"][0]["lower_bound"] = 9.0
    with pytest.raises(bl.InvalidBaseline, match="edges must be at least two finite numbers in ascending"):
        drift.judge([], flat, constraints)
    with pytest.raises(ValueError, match="no feature 'nope' in the baseline"):
        WindowCounter(Buckets.from_statistics(stats)).add_non_numeric("nope")


def test_violations_file_has_model_monitors_shape(training: tuple, tmp_path: Path) -> None:
    _, _, stats, constraints = training
    moved = windows(training, "core-0", 1, seed=6, shift={"bp": -2.0})
    path = drift.write_violations(tmp_path / "core-0", drift.judge(moved, stats, constraints).fleet)
    doc = json.loads(path.read_text())
    schema = json.loads((Path(bl.__file__).parent / "constraint-violations.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert path.name == "constraint_violations.json"
    assert [(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"]] == [
        ("bp", "baseline_drift_check")
    ]
    assert set(doc["violations"][0]) == {"feature_name", "constraint_check_type", "description"}


def test_linf_distance_is_the_largest_gap_between_the_cumulative_histograms() -> None:
    assert drift.linf_distance([1, 1], [2, 0]) == 0.5
    assert drift.linf_distance([5, 0, 5], [0, 10, 0]) == 0.5
    assert drift.linf_distance([3, 3, 3], [1, 1, 1]) == 0.0
    with pytest.raises(ValueError):
        drift.linf_distance([0, 0], [1, 1])


def test_device_counting_matches_the_reference_rule_and_the_window_schema(training: tuple) -> None:
    df, features, stats, _ = training
    buckets = Buckets.from_statistics(stats)
    x = df[features].to_numpy()[:50].copy()
    x[3, 2] = np.nan
    x[4, 0] = 1e9  # beyond the last edge: last bucket
    counts, missing = count_rows(buckets, x)
    for j, name in enumerate(features):
        col = x[:, j][~np.isnan(x[:, j])]
        expected = np.bincount(bucket_index(buckets.edges[name], col), minlength=buckets.sizes[j])
        assert buckets.split(counts)[j] == expected.tolist()
    assert missing.tolist() == [0, 0, 1] + [0] * (len(features) - 3)
    counter = WindowCounter(buckets)
    counter.reset(start=T0)
    counter.add(x, predictions=np.arange(50.0), labels=["a"] * 50)
    message = counter.message("core-0", "1.0.0", end=T0 + 300.5)
    schema = json.loads((Path(bl.__file__).parent / "monitoring-window.schema.json").read_text())
    jsonschema.validate(message, schema)
    assert message["window_end"] == "2026-09-21T14:18:20.500Z"
    assert message["predictions"] == {
        "count": 50,
        "sum": 1225.0,
        "sum_squares": float(np.dot(np.arange(50.0), np.arange(50.0))),
        "min": 0.0,
        "max": 49.0,
        "class_counts": {"a": 50},
    }
    age = message["features"][0]
    assert age["sum"] == pytest.approx(np.nansum(x[:, 0]))
    with pytest.raises(ValueError, match="expected a"):
        count_rows(buckets, x[:, :3])


def test_small_requests_count_exactly_as_batches(training: tuple) -> None:
    """Requests of up to SMALL rows take the plain-Python path: same window as one batch."""
    df, features, stats, _ = training
    x = df[features].to_numpy()[:40].astype(np.float32)
    x[5, 1] = x[9, 4] = np.nan
    x[7, 0] = 1e9
    pred = np.linspace(-1.0, 1.0, 40)
    buckets = Buckets.from_statistics(stats)
    batch, single = WindowCounter(buckets), WindowCounter(buckets)
    for w in (batch, single):
        w.reset(start=T0)
    batch.add(x, predictions=pred)
    for i in range(0, 40, 2):  # 2 rows per request
        single.add(x[i : i + 2], predictions=pred[i : i + 2])
    a, b = batch.message("core-0", "1", end=T0 + 1), single.message("core-0", "1", end=T0 + 1)
    assert [f["counts"] for f in a["features"]] == [f["counts"] for f in b["features"]]
    assert [f["missing"] for f in b["features"]][:5] == [0, 1, 0, 0, 1]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        assert fa["min"] == fb["min"] and fa["max"] == fb["max"]
        assert fb["sum"] == pytest.approx(fa["sum"]) and fb["sum_squares"] == pytest.approx(fa["sum_squares"])
    assert b["predictions"]["count"] == 40 and b["predictions"]["sum"] == pytest.approx(0.0, abs=1e-12)
    assert (b["predictions"]["min"], b["predictions"]["max"]) == (-1.0, 1.0)
    assert b["predictions"] == pytest.approx(a["predictions"])


def test_the_float32_matrix_the_device_counts_lands_in_the_baselines_buckets(training: tuple) -> None:
    """Edges sit between training values, so float32 rounding never moves a value across one."""
    df, features, stats, _ = training
    counts, _ = count_rows(Buckets.from_statistics(stats), df[features].to_numpy().astype(np.float32))
    baseline = [
        b["count"]
        for f in stats["features"]
        for b in f["numerical_statistics"]["distribution"]["kll"]["buckets"]
    ]
    assert counts.tolist() == baseline
