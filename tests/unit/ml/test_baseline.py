"""The training baseline: statistics.json and constraints.json in Model Monitor's formats."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from edge_runtime.inference.monitoring import Buckets, bucket_index, edges_from_statistics
from pipeline.ml import baseline as bl
from pipeline.ml.exceptions import InvalidDataset

SCHEMAS = Path(bl.__file__).parent


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "count": [1, 2, 3, 4, None, 2],  # few distinct values, one missing
            "ratio": np.linspace(-1.0, 2.0, 6),  # fractional, negative values
        }
    )


def test_statistics_of_a_known_dataset(frame: pd.DataFrame) -> None:
    stats = bl.statistics_of(frame, ["count", "ratio"])
    assert stats["version"] == 0
    assert stats["dataset"]["item_count"] == 6
    count, ratio = stats["features"]
    assert (count["name"], count["inferred_type"]) == ("count", "Integral")
    assert ratio["inferred_type"] == "Fractional"
    num = count["numerical_statistics"]
    assert num["common"] == {"num_present": 5, "num_missing": 1}
    assert num["sum"] == 12.0 and num["mean"] == pytest.approx(2.4)
    assert num["std_dev"] == pytest.approx(np.std([1, 2, 3, 4, 2]))  # population std
    assert (num["min"], num["max"]) == (1.0, 4.0)
    buckets = num["distribution"]["kll"]["buckets"]
    # four distinct values: one bucket each, edges halfway between them
    assert [b["count"] for b in buckets] == [1, 2, 1, 1]
    assert [b["lower_bound"] for b in buckets] == [1.0, 1.5, 2.5, 3.5]
    assert buckets[-1]["upper_bound"] == 4.0
    assert sum(b["count"] for b in buckets) == num["common"]["num_present"]
    sketch = num["distribution"]["kll"]["sketch"]
    assert sketch["parameters"] == {"c": 0.64, "k": 2048}
    assert sketch["data"] == [[1.0, 2.0, 2.0, 3.0, 4.0]]


def test_many_distinct_values_get_decile_buckets() -> None:
    values = np.random.default_rng(1).normal(size=1000)
    stats = bl.statistics_of(pd.DataFrame({"x": values}), ["x"])
    buckets = stats["features"][0]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert len(buckets) == bl.DEFAULT_BUCKETS
    assert [b["count"] for b in buckets] == [100] * 10
    assert buckets[0]["lower_bound"] == values.min() and buckets[-1]["upper_bound"] == values.max()


def test_bucket_counting_rule_puts_outliers_in_the_end_buckets() -> None:
    edges = [0.0, 1.0, 2.0, 3.0]
    assert bucket_index(edges, [-5.0, 0.0, 0.999, 1.0, 2.5, 3.0, 99.0]).tolist() == [0, 0, 0, 1, 2, 2, 2]


def test_constraints_suggested_from_statistics(frame: pd.DataFrame) -> None:
    constraints = bl.constraints_of(bl.statistics_of(frame, ["count", "ratio"]))
    count, ratio = constraints["features"]
    assert count["completeness"] == pytest.approx(5 / 6) and ratio["completeness"] == 1.0
    assert count["num_constraints"] == {"is_non_negative": True}
    assert ratio["num_constraints"] == {"is_non_negative": False}
    dist = constraints["monitoring_config"]["distribution_constraints"]
    assert (dist["comparison_threshold"], dist["comparison_method"]) == (0.1, "Robust")


def test_bad_baseline_data_gets_a_clear_error() -> None:
    with pytest.raises(InvalidDataset, match="no column for features: b"):
        bl.statistics_of(pd.DataFrame({"a": [1.0]}), ["a", "b"])
    with pytest.raises(InvalidDataset, match="'a' has 1 non-numeric values"):
        bl.statistics_of(pd.DataFrame({"a": [1.0, "x"]}), ["a"])


def test_the_exported_model_carries_its_baseline(built: dict) -> None:
    """export_model writes baseline/ beside model.json; read back with Model Monitor's names."""
    b = built["diabetes"]
    folder = b.out_dir / bl.BASELINE_DIR
    stats = json.loads((folder / "statistics.json").read_text())
    constraints = json.loads((folder / "constraints.json").read_text())
    jsonschema.validate(stats, schema("statistics.schema.json"))
    jsonschema.validate(constraints, schema("constraints.schema.json"))
    validation = pd.read_csv(b.data.validation_csv)
    assert stats["dataset"]["item_count"] == len(validation)
    assert [f["name"] for f in stats["features"]] == b.manifest["features"]
    for feature in stats["features"]:
        num = feature["numerical_statistics"]
        column = validation[feature["name"]]
        assert num["common"]["num_present"] == column.notna().sum()
        assert num["mean"] == pytest.approx(column.mean())
        assert num["std_dev"] == pytest.approx(column.std(ddof=0))
        counts = [k["count"] for k in num["distribution"]["kll"]["buckets"]]
        assert sum(counts) == num["common"]["num_present"]
    assert {c["name"] for c in constraints["features"]} == set(b.manifest["features"])
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"
    # the device reads its edges from the same file
    names, edges = edges_from_statistics(stats)
    assert Buckets(names, edges).total == sum(len(e) - 1 for e in edges.values())


def test_export_describes_the_training_data_when_given(built: dict, tmp_path: Path) -> None:
    from pipeline.ml.export import export_model

    b = built["wine"]
    export_model(b.model_dir, b.data.validation_csv, tmp_path / "m", baseline_csv=b.data.train_csv)
    stats, _ = bl.read_baseline(tmp_path / "m" / bl.BASELINE_DIR)
    assert stats["dataset"]["item_count"] == len(pd.read_csv(b.data.train_csv))


def test_a_large_feature_gets_a_compacted_sketch() -> None:
    stats = bl.statistics_of(pd.DataFrame({"x": np.arange(5000.0)}), ["x"])
    data = stats["features"][0]["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    assert [len(level) for level in data] == [0, 0, 1250]  # 5000 -> 2500 -> 1250 <= k, each weighs 4
    assert data[-1][:3] == [0.0, 4.0, 8.0]


def test_read_baseline_round_trips_and_refuses_bad_files(tmp_path: Path, frame: pd.DataFrame) -> None:
    stats, constraints = bl.write_baseline(frame, ["count", "ratio"], tmp_path / "b")
    assert bl.read_baseline(tmp_path / "b") == (stats, constraints)
    broken = json.loads(json.dumps(stats))
    del broken["features"][0]["numerical_statistics"]["common"]["num_present"]
    (tmp_path / "b" / "statistics.json").write_text(json.dumps(broken))
    with pytest.raises(bl.InvalidBaseline, match=r"features/0/numerical_statistics/common.*num_present"):
        bl.read_baseline(tmp_path / "b")
    with pytest.raises(bl.InvalidBaseline, match="no such file"):
        bl.read_baseline(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        (
            "constraints",
            {"version": 0, "features": [{"name": "a", "inferred_type": "Real", "completeness": 1}]},
        ),
        ("constraint_violations", {"violations": [{"feature_name": "a", "constraint_check_type": "drift"}]}),
        ("statistics", {"version": 0, "dataset": {}, "features": []}),
    ],
)
def test_the_schemas_refuse_what_model_monitor_would_not_write(kind: str, doc: dict) -> None:
    with pytest.raises(bl.InvalidBaseline, match=f"not a valid {kind} document"):
        bl.validate(doc, kind)
