"""Overload of a device configured as ``mlops-edge run`` configures it (issue 13, item 4).

The device is started by ``mlops_edge.environment.fleet.Fleet`` with no options, exactly as
``mlops-edge run`` starts its devices: IoT Core's flow control on (100 publishes/s). The model and
inference components are published and deployed through the local cloud's greengrassv2 API.
Pushed three times past the limit, every request must be answered within a bounded time, by a
result or by an explicit ``THROTTLED``/``BUSY`` error carrying its id, and telemetry must count
the rejections. Before the fix, results piled up in the core for seconds (and, over longer runs,
requests were dropped by the broker while the core's PUBACKs waited in awscrt's throttle).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from components import build
from mlops_edge.environment.fleet import Fleet
from pipeline.mqtt import MqttClient, MqttSettings
from tests.unit.ml.helpers import build as build_model

pytestmark = pytest.mark.integration

MODEL = "com.example.overload.Model"
INFERENCE = "com.example.overload.Inference"
RATE_PER_S = 300
SECONDS = 3.0
#: After the last request, how long every answer may take at most (the queue holds ~1 s of results).
ANSWERED_WITHIN_S = 4.0


def _publish(local_cloud: Any, bucket: str, recipe: dict[str, Any], data: bytes) -> None:
    s3, gg = local_cloud.client("s3"), local_cloud.client("greengrassv2")
    uri = recipe["Manifests"][0]["Artifacts"][0]["URI"]
    s3.put_object(Bucket=bucket, Key=uri.split(f"s3://{bucket}/", 1)[1], Body=data)
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    deadline = time.monotonic() + 60
    while gg.describe_component(arn=arn)["status"]["componentState"] != "DEPLOYABLE":
        assert time.monotonic() < deadline, f"{arn} never became DEPLOYABLE"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def device(local_cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list]]:
    """One device as `mlops-edge run` starts it, serving the inference component; (thing, rows)."""
    tmp = tmp_path_factory.mktemp("overload")
    built = build_model(tmp / "model", "diabetes", num_round=10)
    manifest = json.loads((built.out_dir / "model.json").read_text())
    manifest["model_version"] = "1.0.1"
    (built.out_dir / "model.json").write_text(json.dumps(manifest))
    bucket = f"overload-{uuid.uuid4().hex[:8]}"
    local_cloud.client("s3").create_bucket(Bucket=bucket)
    model_version = build.model_version(1)
    _publish(
        local_cloud,
        bucket,
        build.render_recipe(
            "model",
            component_name=MODEL,
            component_version=model_version,
            artifact_uri=f"s3://{bucket}/{MODEL}/{model_version}/model.zip",
        ),
        build.model_artifact(built.out_dir),
    )
    code = build.inference_artifact()
    inference_version = build.inference_version(code)
    _publish(
        local_cloud,
        bucket,
        build.render_recipe(
            "inference",
            component_name=INFERENCE,
            component_version=inference_version,
            artifact_uri=f"s3://{bucket}/{INFERENCE}/{inference_version}/inference.zip",
            model_component_name=MODEL,
        ),
        code,
    )
    group = f"overload-{uuid.uuid4().hex[:6]}"
    thing = f"overload-{uuid.uuid4().hex[:6]}"
    fleet = Fleet(local_cloud, root=tmp / "devices", thing_group=group, env=local_cloud.env())
    fleet.start(names=[thing])  # no options: the configuration `mlops-edge run` gives its devices
    try:
        gg, iot = local_cloud.client("greengrassv2"), local_cloud.client("iot")
        merge = json.dumps({"PythonPath": sys.executable, "TelemetryIntervalSeconds": 1})
        deployment = gg.create_deployment(
            targetArn=iot.describe_thing_group(thingGroupName=group)["thingGroupArn"],
            deploymentName="overload",
            components={
                MODEL: {"componentVersion": model_version},
                INFERENCE: {"componentVersion": inference_version, "configurationUpdate": {"merge": merge}},
            },
        )
        _wait_deployed(gg, thing, deployment["deploymentId"])
        rows = json.loads((built.out_dir / "golden.json").read_text())["rows"]
        yield thing, rows
    finally:
        fleet.stop()


def _wait_deployed(gg: Any, thing: str, deployment_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for d in gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]:
            if d["deploymentId"] == deployment_id:
                assert d["coreDeviceExecutionStatus"] not in ("FAILED", "REJECTED", "TIMED_OUT"), d
                if d["coreDeviceExecutionStatus"] == "SUCCEEDED":
                    return
        time.sleep(0.25)
    raise AssertionError("the deployment did not finish")


class Answers:
    """Every result on the device's result topic by request id, singles and rejection batches."""

    def __init__(self) -> None:
        self.by_id: dict[str, list[dict[str, Any]]] = {}
        self.telemetry: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def on_result(self, topic: str, payload: bytes) -> None:
        message = json.loads(payload)
        with self.lock:
            for result in message.get("results", [message]):
                self.by_id.setdefault(result.get("id"), []).append(result)

    def on_telemetry(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.telemetry.append(json.loads(payload))

    def count(self, ids: list[str]) -> int:
        with self.lock:
            return sum(1 for i in ids if i in self.by_id)


def _client(local_cloud: Any) -> MqttClient:
    ident, endpoint = local_cloud.pipeline_identity, local_cloud.mqtt
    return MqttClient(
        MqttSettings(
            endpoint.host, endpoint.port, str(ident.ca_path), str(ident.cert_path), str(ident.key_path)
        )
    )


def _serving(client: MqttClient, thing: str, row: list[float], answers: Answers) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = f"probe-{uuid.uuid4().hex[:6]}"
        client.publish(f"edge/{thing}/inference/request", {"id": probe, "instances": [row]})
        time.sleep(0.5)
        if answers.count([probe]):
            return
    raise AssertionError("the device never answered")


def test_three_times_the_publish_limit_every_request_is_answered_or_explicitly_rejected(
    local_cloud: Any, device: tuple[str, list]
) -> None:
    thing, rows = device
    answers = Answers()
    with _client(local_cloud) as client:
        client.subscribe(f"edge/{thing}/inference/result", answers.on_result)
        client.subscribe(f"edge/{thing}/telemetry", answers.on_telemetry)
        _serving(client, thing, rows[0], answers)
        with answers.lock:
            requests_before = max((t["requests"] for t in answers.telemetry), default=0)
        ids = [f"load-{i}" for i in range(int(RATE_PER_S * SECONDS))]
        started = time.monotonic()
        for i, rid in enumerate(ids):
            due = started + i / RATE_PER_S
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            client.publish(
                f"edge/{thing}/inference/request",
                {"id": rid, "instances": [rows[i % len(rows)]]},
                wait=False,
            )
        last_sent = time.monotonic()
        while answers.count(ids) < len(ids) and time.monotonic() - last_sent < ANSWERED_WITHIN_S:
            time.sleep(0.05)
        answered_after_s = time.monotonic() - last_sent
        missing = [i for i in ids if i not in answers.by_id]
        assert not missing, f"{len(missing)} of {len(ids)} unanswered {ANSWERED_WITHIN_S} s after the last"
        time.sleep(1.0)  # anything answered twice would show up now

        with answers.lock:
            per_id = {rid: answers.by_id[rid] for rid in ids}
        assert all(len(results) == 1 for results in per_id.values()), "a request answered twice"
        outcomes = Counter(r[0]["error"]["code"] if not r[0]["ok"] else "ok" for r in per_id.values())
        assert set(outcomes) <= {"ok", "THROTTLED", "BUSY"}, outcomes
        # ~100 results/s get through (a second's burst first); the rest are refused, not dropped
        assert outcomes["ok"] >= 0.7 * 100 * SECONDS, outcomes
        rejected = outcomes["THROTTLED"] + outcomes["BUSY"]
        assert rejected >= 0.3 * len(ids), outcomes
        for results in per_id.values():
            if not results[0]["ok"]:
                assert results[0]["error"]["message"] and results[0]["thing"] == thing

        # telemetry counts every one of them, the rejections by code
        def counted() -> dict[str, Any] | None:
            with answers.lock:
                done = [t for t in answers.telemetry if t["requests"] - requests_before >= len(ids)]
            return done[-1] if done else None

        deadline = time.monotonic() + 5
        while counted() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        snapshot = counted()
        assert snapshot is not None, "telemetry never counted the load"
        assert sum(snapshot["rejected"].values()) >= rejected
        assert snapshot["publish_failures"] == 0
    print(
        f"\n{len(ids)} requests at {RATE_PER_S}/s: {dict(outcomes)}; last answer {answered_after_s:.2f} s after the last request"
    )


def test_at_the_limit_nothing_is_rejected(local_cloud: Any, device: tuple[str, list]) -> None:
    """80 requests/s (below IoT Core's 100 publishes/s, telemetry included) are all answered."""
    thing, rows = device
    answers = Answers()
    with _client(local_cloud) as client:
        client.subscribe(f"edge/{thing}/inference/result", answers.on_result)
        _serving(client, thing, rows[0], answers)
        ids = [f"steady-{i}" for i in range(160)]
        started = time.monotonic()
        for i, rid in enumerate(ids):
            due = started + i / 80
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            client.publish(f"edge/{thing}/inference/request", {"id": rid, "instances": [rows[0]]}, wait=False)
        deadline = time.monotonic() + 5
        while answers.count(ids) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
        with answers.lock:
            outcomes = Counter(
                "ok" if answers.by_id[i][0]["ok"] else "error" for i in ids if i in answers.by_id
            )
    assert outcomes == {"ok": len(ids)}
