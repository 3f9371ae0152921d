"""MonitorDrift on moto S3 with a recording EventBridge: windows stored and judged, Model Monitor's
files written, one event per model version and scope until the judgement clears, bad windows
rejected with a reason, and a retraining input the pipeline accepts."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from edge_runtime.inference.monitoring import Buckets, WindowCounter
from lambdas.core.configure import configure
from lambdas.core.monitoring import monitor_window
from lambdas.core.retraining import EVENT_DETAIL_TYPE, EVENT_SOURCE, SNAPSHOT_PREFIX
from pipeline.config import schema as input_schema
from pipeline.config.function_env import Settings
from pipeline.config.validation import validate as validate_input
from pipeline.ml import baseline as bl
from pipeline.ml.datasets import write_demo

from .conftest import BUCKET

MV = "1.0.7"
ROOT = f"state/monitoring/{MV}/"
T0 = 1_790_000_000.0
ROWS = 80


class RecordingEvents:
    """EventBridge's PutEvents, recorded (the unit under test only puts events)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{len(self.entries)}"} for _ in Entries]}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for e in self.entries]


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = write_demo("diabetes", tmp_path_factory.mktemp("monitoring"))
    df = pd.read_csv(data.train_csv)
    features = [c for c in df.columns if c != data.target]
    stats, constraints = bl.write_baseline(df, features, tmp_path_factory.mktemp("baseline"))
    return {"df": df, "features": features, "stats": stats, "constraints": constraints, "data": data}


@pytest.fixture
def world(s3: Any, training: dict[str, Any]) -> dict[str, Any]:
    """The bucket as PublishComponents leaves it: the baseline and context.json of model MV."""
    for name, doc in (("statistics", training["stats"]), ("constraints", training["constraints"])):
        s3.put_object(Bucket=BUCKET, Key=f"{ROOT}baseline/{name}.json", Body=json.dumps(doc))
    context = {
        "model_version": MV,
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/edge-models/7",
        "model_name": "com.example.test.Model",
        "dataset": {
            "train": f"s3://{BUCKET}/datasets/train/",
            "validation": None,
            "target": "target",
            "task": "auto",
        },
        "hyperparameters": {"num_round": 40, "max_depth": 4},
        "monitoring": {
            "window_s": 300,
            "retrain_on_drift": True,
            "retrain_data_uri": None,
            "judge_windows": 1,
        },
        "source_execution": None,
    }
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}context.json", Body=json.dumps(context))
    return {"s3": s3, "events": RecordingEvents(), "context": context}


def window(
    training: dict[str, Any], thing: str, i: int, *, shift: float = 0.0, seed: int = 0
) -> dict[str, Any]:
    """Window ``i`` of ``thing``: ROWS training rows, feature ``bmi`` shifted by ``shift`` std."""
    df, features = training["df"], training["features"]
    counter = WindowCounter(Buckets.from_statistics(training["stats"]))
    counter.reset(start=T0 + 60 * i)
    x = df[features].to_numpy()[np.random.default_rng(seed + i).integers(0, len(df), ROWS)].copy()
    x[:, features.index("bmi")] += shift * df["bmi"].std(ddof=0)
    counter.add(x.astype(np.float32), predictions=x[:, 0])
    return counter.message(thing, MV, end=T0 + 60 * (i + 1))


def send(world: dict[str, Any], doc: Any) -> dict[str, Any]:
    return monitor_window(doc, settings=Settings(bucket=BUCKET), s3=world["s3"], events=world["events"])


def read(s3: Any, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def checks(s3: Any, scope: str) -> list[tuple[str, str]]:
    """constraint_violations.json of a scope read back with Model Monitor's field names."""
    doc = read(s3, f"{ROOT}{scope}/constraint_violations.json")
    bl.validate(doc, "constraint_violations")
    return [(v["feature_name"], v["constraint_check_type"]) for v in doc["violations"] if v["description"]]


def test_in_distribution_windows_raise_nothing_and_report_validates(world: dict, training: dict) -> None:
    for i in range(3):
        for thing in ("core-a", "core-b"):
            out = send(world, window(training, thing, i, seed=100 * ord(thing[-1])))
            assert out["accepted"] and not out["violations"], out
    s3 = world["s3"]
    report = read(s3, f"{ROOT}report.json")
    bl.validate(report, "monitoring_report")
    assert set(report["scopes"]) == {"fleet", "devices/core-a", "devices/core-b"}
    assert report["windows"] == {"core-a": 3, "core-b": 3}
    assert report["scopes"]["devices/core-a"]["windows"] == 1  # judge_windows 1: the latest
    assert report["scopes"]["fleet"]["rows"] == 2 * ROWS
    assert checks(s3, "fleet") == [] and checks(s3, "devices/core-a") == []
    assert read(s3, "state/monitoring/latest.json")["model_version"] == MV
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{ROOT}windows/core-b/")["KeyCount"] == 3
    assert world["events"].entries == []


def test_shift_raises_one_event_per_scope_until_it_clears(world: dict, training: dict) -> None:
    s3, events = world["s3"], world["events"]
    send(world, window(training, "core-a", 0))
    out = send(world, window(training, "core-a", 1, shift=2.0))
    assert out["violations"] and out["alerts"] == ["devices/core-a", "fleet"]
    assert checks(s3, "devices/core-a") == [("bmi", "baseline_drift_check")]
    assert checks(s3, "fleet") == [("bmi", "baseline_drift_check")]
    details = {d["scope"]: d for d in events.details()}
    assert set(details) == {"fleet", "devices/core-a"}
    assert all(e["Source"] == EVENT_SOURCE and e["DetailType"] == EVENT_DETAIL_TYPE for e in events.entries)
    fleet = details["fleet"]
    assert fleet["model_version"] == MV and fleet["report_uri"] == f"s3://{BUCKET}/{ROOT}report.json"
    assert [v["feature_name"] for v in fleet["violations"]] == ["bmi"]
    assert fleet["retraining_input"]["dataset"] == world["context"]["dataset"]
    assert details["devices/core-a"]["retraining_input"] is None
    # still drifting: no new event; the report shows the open alerts
    send(world, window(training, "core-a", 2, shift=2.0))
    assert len(events.entries) == 2
    report = read(s3, f"{ROOT}report.json")
    assert set(report["alerts"]) == {"fleet", "devices/core-a"}
    assert report["alerts"]["fleet"]["event_id"]
    # an idle window is no evidence: the alert stays
    idle = window(training, "core-a", 3)
    idle.update(row_count=0, features=[{**f, "counts": [0] * len(f["counts"])} for f in idle["features"]])
    send(world, idle)
    assert set(read(s3, f"{ROOT}report.json")["alerts"]) == {"fleet", "devices/core-a"}
    # back in distribution: cleared; drifting again raises again
    send(world, window(training, "core-a", 4))
    assert read(s3, f"{ROOT}report.json")["alerts"] == {}
    send(world, window(training, "core-a", 5, shift=-2.0))
    assert len(events.entries) == 4


def test_redelivered_window_is_counted_once(world: dict, training: dict) -> None:
    doc = window(training, "core-a", 0)
    send(world, doc)
    send(world, doc)
    assert read(world["s3"], f"{ROOT}report.json")["windows"] == {"core-a": 1}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: "not json {", "no usable model_version"),
        (lambda d: [1, 2], "no usable model_version"),
        (lambda d: {**d, "model_version": "9.9.9"}, "has no baseline"),
        (lambda d: {**d, "row_count": -1}, "not a valid monitoring_window"),
        (lambda d: {**d, "edges_digest": "sha256:" + "0" * 64}, "other bucket edges"),
        (lambda d: {**d, "window_end": "2000-01-01T00:00:00Z"}, "window_end is before window_start"),
    ],
)
def test_bad_windows_are_rejected_with_a_reason(
    world: dict, training: dict, mutate: Any, reason: str
) -> None:
    send(world, window(training, "core-a", 0))  # a report exists to list the rejection in
    out = send(world, mutate(window(training, "core-a", 1)))
    assert out["accepted"] is False and reason in out["reason"], out
    report = read(world["s3"], f"{ROOT}report.json")
    bl.validate(report, "monitoring_report")
    assert reason in report["rejected"][-1]["reason"]
    assert report["windows"] == {"core-a": 1}


def test_retraining_input_passes_the_pipelines_validation(world: dict, training: dict) -> None:
    send(world, window(training, "core-a", 0, shift=2.0))
    doc = next(d for d in world["events"].details() if d["scope"] == "fleet")["retraining_input"]
    schema = input_schema()
    validate_input(doc, schema)
    settings = Settings(bucket=BUCKET, model_package_group="g", thing_group="t", sourcedir_uri="s3://b/s.tgz")
    config = configure({"input": doc, "execution": "retrain"}, settings=settings, s3=None)["config"]
    assert config["dataset"]["train"] == f"s3://{BUCKET}/datasets/train/"
    assert config["monitoring"]["retrain_on_drift"] is True
    assert config["training"]["hyperparameters"]["num_round"] == "40"


def test_retraining_input_is_the_source_input_with_only_the_dataset_replaced(
    world: dict, training: dict, settings: Settings
) -> None:
    """The context PublishComponents writes carries the input Configure validated: a retraining of
    a ``mlops-edge run --canary 1`` model keeps its rollout, polls, device PythonPath and quality
    gate; only the dataset (resolved, as trained on) and the comment differ."""
    from lambdas.core.monitoring_context import context_document
    from mlops_edge.environment.run_options import RunOptions, execution_input

    dataset = {"train": f"s3://{BUCKET}/datasets/run/train.csv", "target": "target", "task": "auto"}
    source = execution_input(
        RunOptions(devices=2, canary=1, hyperparameters={"num_round": 40}), dataset, python="/opt/d/python"
    )
    source.update(
        quality={"max": {"validation:rmse": 70}},
        monitoring={"window_s": 3, "retrain_on_drift": True, "judge_windows": 1},
    )
    config = configure({"input": source, "execution": "e-src"}, settings=settings, s3=None)["config"]
    context = context_document(config, {"model_package_arn": world["context"]["model_package_arn"]}, MV)
    world["s3"].put_object(Bucket=BUCKET, Key=f"{ROOT}context.json", Body=json.dumps(context))
    send(world, window(training, "core-a", 0, shift=2.0))
    doc = next(d for d in world["events"].details() if d["scope"] == "fleet")["retraining_input"]
    assert doc["comment"].startswith(f"retraining: fleet drift of model {MV}")
    assert doc["dataset"] == config["dataset"]
    unchanged = {k: v for k, v in source.items() if k not in ("comment", "dataset")}
    assert {k: v for k, v in doc.items() if k not in ("comment", "dataset")} == unchanged
    assert doc["components"]["inference_configuration"]["PythonPath"] == "/opt/d/python"
    again = configure({"input": doc, "execution": "e-retrain"}, settings=settings, s3=None)["config"]
    for key in ("rollout", "poll", "components", "quality", "verification", "monitoring", "dataset"):
        assert again[key] == config[key], key


def test_a_retraining_trains_even_when_the_source_deployed_a_registered_model() -> None:
    """``model_package_arn`` (deploy that package, no training) and the comments are the source
    execution's own: a retraining that kept the ARN would redeploy the drifting model."""
    from lambdas.core.retraining import retraining_input

    source = {"Comment": "c", "comment": "d", "model_package_arn": "arn:x", "auto_approve": False}
    context = {"dataset": {"train": "s3://b/t/", "target": "y"}, "input": source}
    doc = retraining_input(context, model_version=MV, scope="fleet", when="2026-11-27T00:00:00Z")
    assert doc is not None and set(doc) == {"comment", "dataset", "auto_approve"}
    assert doc["dataset"] == {"train": "s3://b/t/", "target": "y"} and doc["auto_approve"] is False


def test_newer_data_is_snapshotted_with_the_training_data(world: dict, training: dict) -> None:
    s3 = world["s3"]
    s3.put_object(Bucket=BUCKET, Key="datasets/train/train.csv", Body=b"a,target\n1,0\n")
    s3.put_object(Bucket=BUCKET, Key="datasets/newer/2026/11/part.csv", Body=b"a,target\n2,1\n")
    s3.put_object(Bucket=BUCKET, Key="datasets/newer/notes.txt", Body=b"not data")
    context = {
        **world["context"],
        "monitoring": {
            **world["context"]["monitoring"],
            "retrain_data_uri": f"s3://{BUCKET}/datasets/newer/",
        },
    }
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}context.json", Body=json.dumps(context))
    send(world, window(training, "core-a", 0, shift=2.0))
    doc = next(d for d in world["events"].details() if d["scope"] == "fleet")["retraining_input"]
    train = doc["dataset"]["train"]
    assert train.startswith(f"s3://{BUCKET}/{SNAPSHOT_PREFIX}{MV}/") and train.endswith("/")
    prefix = train.split("/", 3)[3]
    keys = sorted(
        o["Key"][len(prefix) :] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    )
    assert keys == ["base/train.csv", "new/2026/11/part.csv"]
    validate_input(doc, input_schema())


def test_missing_newer_data_still_raises_the_event_without_a_retraining(world: dict, training: dict) -> None:
    s3 = world["s3"]
    context = {
        **world["context"],
        "monitoring": {**world["context"]["monitoring"], "retrain_data_uri": f"s3://{BUCKET}/datasets/none/"},
    }
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}context.json", Body=json.dumps(context))
    send(world, window(training, "core-a", 0, shift=2.0))
    fleet = next(d for d in world["events"].details() if d["scope"] == "fleet")
    assert fleet["retraining_input"] is None and "no .csv file" in fleet["retraining_skipped"]


def test_input_monitoring_section_defaults_and_errors(settings: Settings) -> None:
    config = configure({"input": {}, "execution": "x"}, settings=settings, s3=None)["config"]
    assert config["monitoring"] == {
        "window_s": 300,
        "retrain_on_drift": False,
        "retrain_data_uri": None,
        "judge_windows": 1,
    }
    schema = input_schema()
    for bad, says in [
        ({"monitoring": {"window_s": -1}}, "$.monitoring.window_s"),
        ({"monitoring": {"judge_windows": 0}}, "$.monitoring.judge_windows"),
        ({"monitoring": {"retrain_data_uri": "newer/"}}, "$.monitoring.retrain_data_uri"),
        ({"monitoring": {"retrain_on_drift": True, "window_s": 0}}, "window_s is 0"),
        (
            {"dataset": {"train": "s3://b/data/"}, "monitoring": {"retrain_data_uri": "s3://b/data/new/"}},
            "overlaps dataset.train",
        ),
    ]:
        with pytest.raises(Exception, match=r"execution input is invalid") as info:
            validate_input(bad, schema)
        assert says in str(info.value)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"monitoring": {"x": 1}}, schema)


class RuleSwitch:
    """EventBridge's EnableRule/DisableRule, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def enable_rule(self, Name: str) -> None:
        self.calls.append(("enable", Name))

    def disable_rule(self, Name: str) -> None:
        self.calls.append(("disable", Name))


@pytest.mark.parametrize(("retrain", "state"), [(True, "ENABLED"), (False, "DISABLED")])
def test_promote_switches_the_retraining_rule_per_the_input(
    s3: Any, config: dict[str, Any], retrain: bool, state: str
) -> None:
    from lambdas.core.promote import promote

    from .test_promote import success_event

    event = success_event({**config, "monitoring": {**config["monitoring"], "retrain_on_drift": retrain}})
    event["registry"]["approval_status"] = "Approved"  # no registry call in this test
    switch = RuleSwitch()
    out = promote(event, s3=s3, sagemaker=None, events=switch, retraining_rule="r-retrain")
    assert out["retraining_rule"] == state
    assert switch.calls == [("enable" if retrain else "disable", "r-retrain")]
    assert promote(event, s3=s3, sagemaker=None)["retraining_rule"] == "not configured"
