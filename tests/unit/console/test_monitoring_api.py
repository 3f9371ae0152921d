"""``/api/monitoring`` without a browser: the report the monitoring function writes, read from S3
(moto in-process), as the records the page draws; the errors as JSON the page shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from mlops_edge.console.app import create_app
from mlops_edge.console.backend import Backend
from pipeline.config import example_input
from tests.fixtures import monitoring_report as mr

TOKEN = "t0ken-for-the-unit-tests-0123456789"
PORT = 8350
BUCKET = "mlops-edge-console-monitoring"
AUTH = {"Authorization": f"token {TOKEN}"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> mr.Baseline:
    return mr.diabetes_baseline(tmp_path_factory.mktemp("console-monitoring"))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _client(find_bucket: Any) -> TestClient:
    backend = Backend(
        lambda service: boto3.client(service, region_name="us-east-1"),
        find_state_machine=lambda _: "arn:aws:states:us-east-1:123456789012:stateMachine:x",
        model_package_group="mlops-edge-models",
        component_prefix="com.example.mlopsedge",
        find_bucket=find_bucket,
    )
    app = create_app(backend, token=TOKEN, port=lambda: PORT, example_input=example_input)
    return TestClient(app, base_url=f"http://127.0.0.1:{PORT}")


def test_the_report_comes_back_as_chart_records(s3: Any, base: mr.Baseline) -> None:
    docs = mr.windows(base, "core-a", 2, seed=4) + mr.windows(base, "core-b", 2, seed=5, shift={"s5": -2.0})
    mr.produce(s3, boto3.client("events", region_name="us-east-1"), BUCKET, base, docs)
    client = _client(lambda _: BUCKET)
    assert client.get("/api/monitoring").status_code == 401  # behind the token like every route
    assert client.get("/monitoring", headers=AUTH).status_code == 200  # the page's own URL
    doc = client.get("/api/monitoring", headers=AUTH).json()
    assert doc["versions"] == [mr.MODEL_VERSION] and doc["model_version"] == mr.MODEL_VERSION
    assert [s["scope"] for s in doc["scopes"]] == ["fleet", "devices/core-a", "devices/core-b"]
    b = {f["feature"]: f for f in doc["scopes"][2]["features"]}
    assert [n for n, f in b.items() if f["checks"]] == ["s5"]
    assert (
        len(b["s5"]["training_fractions"]) == len(b["s5"]["observed_fractions"]) == len(b["s5"]["edges"]) - 1
    )
    assert abs(sum(b["s5"]["observed_fractions"]) - 1) < 1e-9


def test_errors_are_json_the_page_can_show(s3: Any, base: mr.Baseline) -> None:
    client = _client(lambda _: BUCKET)
    nothing = client.get("/api/monitoring", headers=AUTH)
    assert nothing.status_code == 404 and "no monitoring data yet" in nothing.json()["error"]
    events = boto3.client("events", region_name="us-east-1")
    mr.produce(s3, events, BUCKET, base, mr.windows(base, "core-a", 1, seed=6))
    other = client.get("/api/monitoring?model_version=2.0.0", headers=AUTH)
    assert other.status_code == 404 and "no drift report for model version 2.0.0" in other.json()["error"]

    def no_stack(_: Any) -> str:
        raise RuntimeError("no deployed mlops-edge pipeline stack (output ArtifactBucketName)")

    lost = _client(no_stack).get("/api/monitoring", headers=AUTH)
    assert lost.status_code == 404 and "no deployed mlops-edge pipeline stack" in lost.json()["error"]
