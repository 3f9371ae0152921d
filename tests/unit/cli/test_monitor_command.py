"""`mlops-edge monitor` on reports made by the real producers (WindowCounter windows, drift.judge),
read from S3 (moto in-process) where the monitoring function writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from mlops_edge.main import main
from tests.fixtures import monitoring_report as mr

BUCKET = "mlops-edge-monitor-test"
CALM, DRIFTING = "mlops-edge-device-01", "mlops-edge-device-02"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> mr.Baseline:
    return mr.diabetes_baseline(tmp_path_factory.mktemp("monitor"))


@pytest.fixture(scope="module")
def windows(base: mr.Baseline) -> list[dict]:
    """Three calm windows, two with bmi shifted by 2 std, one counted on other edges (rejected)."""
    docs = mr.windows(base, CALM, 3, seed=1) + mr.windows(base, DRIFTING, 2, seed=2, shift={"bmi": 2.0})
    stale = {**mr.windows(base, "mlops-edge-device-03", 1, seed=3)[0], "edges_digest": "sha256:" + "0" * 64}
    return [*docs, stale]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "MLOPS_EDGE_BUCKET", "MLOPS_EDGE_STATE_PREFIX"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def report(s3: Any, base: mr.Baseline, windows: list[dict]) -> str:
    """The monitoring function's report of ``windows`` in BUCKET; its URI."""
    return mr.produce(s3, boto3.client("events", region_name="us-east-1"), BUCKET, base, windows)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["monitor", "--bucket", BUCKET, *args], catch_exceptions=False)


def test_json_has_the_fleet_then_each_device_and_flags_the_shifted_feature(
    base: mr.Baseline, report: str
) -> None:
    done = run("--output", "json")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["model_version"] == mr.MODEL_VERSION and doc["report_uri"] == report
    assert [s["scope"] for s in doc["scopes"]] == ["fleet", f"devices/{CALM}", f"devices/{DRIFTING}"]
    by_scope = {s["thing"]: {f["feature"]: f for f in s["features"]} for s in doc["scopes"]}
    assert [n for n, f in by_scope[DRIFTING].items() if f["drift"]] == ["bmi"]
    assert not any(f["drift"] for f in by_scope[CALM].values())
    bmi = by_scope[DRIFTING]["bmi"]
    assert bmi["distance"] > bmi["threshold"] == 0.1 and bmi["checks"] == ["baseline_drift_check"]
    training = {f["name"]: f["numerical_statistics"]["mean"] for f in base.statistics["features"]}
    assert bmi["training_mean"] == training["bmi"] and bmi["mean"] > training["bmi"]
    assert len(bmi["edges"]) == len(bmi["training_fractions"]) + 1 == len(bmi["observed_fractions"]) + 1
    assert [s["windows"] for s in doc["scopes"]] == [5, 3, 2]
    assert [s["received"] for s in doc["scopes"]] == [5, 3, 2]
    assert [s["alert"] is not None for s in doc["scopes"]] == [True, False, True]
    assert doc["judge_windows"] == 3 and doc["rejected"][0]["thing"] == "mlops-edge-device-03"
    assert "counted on other bucket edges" in doc["rejected"][0]["reason"]


def test_the_table_shows_the_same_verdicts(report: str) -> None:
    done = run("--device", DRIFTING)
    assert done.exit_code == 0, done.output
    assert (
        f"device {DRIFTING}: 2 windows judged (of 2 received), 120 rows" in done.output
        and "fleet:" not in done.output
    )
    lines = {line.split("│")[1].strip(): line for line in done.output.splitlines() if line.count("│") > 3}
    assert "✖ drift" in lines["bmi"] and "✔ ok" in lines["age"]
    assert "drift alert raised" in done.output
    only = run("--feature", "bmi")
    assert only.exit_code == 0 and "age" not in only.output and only.output.count("✖ drift") == 2
    assert "window left out" in only.output and "counted on other bucket edges" in only.output


def test_a_file_that_is_not_a_report_is_said_so(s3: Any, report: str) -> None:
    key = report.removeprefix(f"s3://{BUCKET}/")
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({**doc, "scopes": {"fleet": {"features": []}}}))
    done = run()
    assert done.exit_code == 1 and "not a valid monitoring_report document at scopes/fleet" in done.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--device", "nope"],
            f"no monitoring windows from device 'nope' for model {mr.MODEL_VERSION} (devices with windows: {CALM}, {DRIFTING})",
        ),
        (["--feature", "height"], "feature 'height' is not one of the model's: age, sex, bmi"),
        (["--model-version", "1.0.9"], "no drift report for model version 1.0.9 yet"),
    ],
)
def test_unknown_names_are_clear_errors(report: str, args: list[str], said: str) -> None:
    done = run(*args)
    assert done.exit_code == 1 and said in done.output and "Traceback" not in done.output
    if "--model-version" in args:
        assert f"versions with monitoring data: {mr.MODEL_VERSION}" in done.output


def test_no_monitoring_data_yet_says_what_produces_it(s3: Any) -> None:
    done = run()
    assert done.exit_code == 1
    assert "no monitoring data yet" in done.output and "edge/<thing>/monitoring" in done.output
    assert "300 s" in done.output


def test_a_bucket_that_is_not_there_and_no_stack_are_clear_errors(s3: Any) -> None:
    done = CliRunner().invoke(main, ["monitor", "--bucket", "no-such-bucket"])
    assert done.exit_code == 1 and "bucket no-such-bucket does not exist" in done.output
    done = CliRunner().invoke(main, ["monitor"])
    assert done.exit_code == 1 and "no deployed mlops-edge pipeline stack" in done.output


def test_the_bucket_comes_from_the_stack_output(s3: Any, base: mr.Baseline, windows: list[dict]) -> None:
    template = {
        "Resources": {"Artifacts": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "from-stack"}}},
        "Outputs": {"ArtifactBucketName": {"Value": {"Ref": "Artifacts"}}},
    }
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="MlopsEdgePipeline", TemplateBody=json.dumps(template)
    )
    events = boto3.client("events", region_name="us-east-1")
    mr.produce(s3, events, "from-stack", base, windows[:1], state_prefix="custom/")
    done = CliRunner().invoke(main, ["monitor", "--state-prefix", "custom", "--output", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["report_uri"].startswith("s3://from-stack/custom/monitoring/")


def test_help_is_lazy_and_names_the_options(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["monitor", "--help"])
    assert done.exit_code == 0
    for option in ("--model-version", "--device", "--feature", "--output", "--bucket"):
        assert option in done.output


def test_the_json_has_the_fields_docs_cli_json_documents(report: str) -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "cli-json.md").read_text()
    block = (
        text.split("## `mlops-edge monitor --output json`", 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    )
    documented = json.loads(block)
    doc = json.loads(run("--output", "json").output)
    assert set(doc) == set(documented)
    assert set(doc["scopes"][0]) == set(documented["scopes"][0])
    assert set(doc["scopes"][0]["features"][0]) == set(documented["scopes"][0]["features"][0])
    assert set(doc["rejected"][0]) == set(documented["rejected"][0])
    assert set(doc["scopes"][0]["alert"]) == set(documented["scopes"][0]["alert"])
