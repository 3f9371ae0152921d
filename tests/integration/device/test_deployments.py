"""A real core on the real broker and S3: deploy, serve, refuse bad artifacts, roll back, restart."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
import uuid
from typing import Any

import pytest

from pipeline.mqtt import MqttClient, MqttError, MqttRefused, MqttSettings
from tests.integration.device.conftest import Bench
from tests.integration.device.harness import (
    INFERENCE,
    LOCAL_CLIENT,
    MODEL,
    crashing_inference_artifact,
    local_client_recipe,
    model_zip_with_bad_manifest,
)

pytestmark = pytest.mark.integration


def _close(actual: float, expected: float, tol: dict[str, float]) -> bool:
    return math.isclose(actual, expected, rel_tol=tol.get("rel", 1e-5), abs_tol=tol.get("abs", 1e-5))


def _serving(bench: Bench, model_version: str, timeout: float = 15.0) -> None:
    request = {"id": uuid.uuid4().hex, "instances": [bench.golden["rows"][0]]}
    answer = bench.operator.infer(bench.thing, request, timeout=timeout, resend_s=2.0)
    assert answer["ok"] is True, answer
    assert answer["model"]["version"] == model_version


def _states(bench: Bench) -> dict[str, str]:
    assert bench.core is not None
    return {c["componentName"]: (c["version"], c["state"]) for c in bench.core.component_statuses()}


def test_deployment_succeeds_and_answers_golden_requests(bench: Bench, deployed: dict[str, str]) -> None:
    states = _states(bench)
    assert states[MODEL] == (deployed["model"], "FINISHED")
    assert states[INFERENCE] == (deployed["inference"], "RUNNING")
    golden = bench.golden
    _serving(bench, "1.0.1")
    for i, (row, expected) in enumerate(zip(golden["rows"][:5], golden["expected"][:5], strict=True)):
        answer = bench.operator.infer(bench.thing, {"id": f"golden-{i}", "instances": [row]})
        assert answer["ok"] is True and answer["thing"] == bench.thing
        assert answer["model"] == {"name": answer["model"]["name"], "version": "1.0.1"}
        assert _close(answer["predictions"][0]["value"], expected["value"], golden["tolerance"]), answer
        # The export shipped model.accel.onnx and Install compiled its library on the device.
        assert answer["engine"] == "accelerated", answer
        assert answer["latency_ms"] >= 0
    assert (bench.root / "work" / INFERENCE / "accel" / "libmlops_edge_trees.so").is_file()
    # records by feature name, several rows at once
    record = dict(zip(golden["features"], golden["rows"][1], strict=True))
    answer = bench.operator.infer(bench.thing, {"id": "records", "records": [record, record]})
    assert answer["ok"] is True and len(answer["predictions"]) == 2
    # telemetry flows on the device's telemetry topic
    bench.operator.watch(f"edge/{bench.thing}/telemetry")
    found = bench.operator.wait(
        lambda t, p: t == f"edge/{bench.thing}/telemetry" and json.loads(p)["requests"] >= 6, timeout=10
    )
    assert found is not None
    doc = json.loads(found[1])
    assert doc["model"]["version"] == "1.0.1" and "p99" in doc["latency_ms"]
    # and the fleet status shows a healthy device
    bench.operator.watch(f"$aws/things/{bench.thing}/greengrassv2/health/json")
    health = bench.operator.wait(lambda t, p: t.endswith("/health/json"), timeout=10)
    assert health is not None and json.loads(health[1])["overallDeviceStatus"] == "HEALTHY"
    # issue 16: the served rows come back as a monitoring window (QoS 1 through the nucleus's IPC,
    # allowed by the recipe's accessControl and the device's own-topics policy), every second here
    _monitoring_window_arrives(bench)


def _monitoring_window_arrives(bench: Bench) -> None:
    from pathlib import Path

    import jsonschema

    topic = f"edge/{bench.thing}/monitoring"
    bench.operator.watch(topic)
    for i in range(3):
        assert bench.operator.infer(
            bench.thing, {"id": f"watched-{i}", "instances": [bench.golden["rows"][i]]}
        )["ok"]
    found = bench.operator.wait(lambda t, p: t == topic and json.loads(p)["row_count"] > 0, timeout=15)
    assert found is not None, "no monitoring window with rows arrived"
    window = json.loads(found[1])
    schema = Path(__file__).resolve().parents[3] / "pipeline/ml/monitoring-window.schema.json"
    jsonschema.validate(window, json.loads(schema.read_text()))
    assert window["thing"] == bench.thing and window["model_version"] == "1.0.1"
    assert [f["name"] for f in window["features"]] == bench.golden["features"]
    assert window["predictions"]["count"] == window["row_count"]


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "EMPTY_REQUEST"),
    (b"not json at all", "INVALID_JSON"),
    (b"\xff\xfe\x00", "INVALID_JSON"),
    (b"[1, 2, 3]", "INVALID_REQUEST"),
    (b'{"instances": [[1]]}', "MISSING_ID"),
]


def test_malformed_requests_get_error_results_and_service_stays_up(
    bench: Bench, deployed: dict[str, str]
) -> None:
    for payload, code in MALFORMED:
        answer = bench.operator.infer(bench.thing, payload)
        assert answer["ok"] is False and answer["error"]["code"] == code, (payload, answer)
    width = len(bench.golden["features"])
    engine_errors: list[dict[str, Any]] = [
        {"id": "no-rows"},
        {"id": "short-row", "instances": [[1.0] * (width - 1)]},
        {"id": "text", "instances": [["a"] * width]},
        {"id": "nested", "instances": [[[1.0]] * width]},
        {"id": "unknown-feature", "records": [{"nope": 1.0}]},
        {"id": "null-body", "body": None},
    ]
    for request in engine_errors:
        answer = bench.operator.infer(bench.thing, request)
        assert answer["ok"] is False and answer["id"] == request["id"], answer
        assert answer["error"]["code"] and answer["error"]["message"]
    _serving(bench, "1.0.1")
    assert _states(bench)[INFERENCE][1] == "RUNNING"


def test_a_device_cannot_read_another_devices_topics(bench: Bench, deployed: dict[str, str]) -> None:
    other = bench.local_cloud.provision_device(f"other-{uuid.uuid4().hex[:6]}", thing_group="test-fleet")
    settings = MqttSettings(
        host=other.mqtt_host,
        port=other.mqtt_port,
        ca_path=str(other.ca_path),
        cert_path=str(other.cert_path),
        key_path=str(other.key_path),
        client_id=other.thing_name,
    )
    seen: list[str] = []
    with MqttClient(settings) as spy:
        try:
            spy.subscribe(f"edge/{bench.thing}/inference/result", lambda t, p: seen.append(t))
            spy.subscribe(f"$aws/things/{bench.thing}/jobs/#", lambda t, p: seen.append(t))
        except MqttError:
            pass  # refused outright is fine too
        _serving(bench, "1.0.1")
        with contextlib.suppress(MqttRefused):  # the broker's PUBACK says Not authorized (0x87)
            spy.publish(f"edge/{bench.thing}/inference/request", {"id": "from-other", "instances": [[0.0]]})
    assert seen == []
    assert bench.operator.wait(lambda t, p: b'"from-other"' in p, timeout=1.0) is None


def test_tampered_artifact_is_rejected_and_previous_version_keeps_serving(
    bench: Bench, deployed: dict[str, str]
) -> None:
    version = bench.publisher.model(bench.model_dir, 2)
    bench.publisher.tamper(MODEL, version)
    status = bench.operator.deploy(bench.thing, bench.components(version, deployed["inference"]))
    assert status["status"] == "FAILED"
    details = status["statusDetails"]
    assert details["detailed-deployment-status"] == "FAILED_NO_STATE_CHANGE"
    assert "ARTIFACT_CHECKSUM_MISMATCH" in json.loads(details["deployment-error-stack"])
    assert not (bench.root / "packages" / "artifacts-unarchived" / MODEL / version).exists()
    assert _states(bench)[MODEL][0] == deployed["model"]
    _serving(bench, "1.0.1")


def test_model_that_fails_to_load_fails_the_deployment(bench: Bench, deployed: dict[str, str]) -> None:
    version = bench.publisher.model(bench.model_dir, 3, artifact=model_zip_with_bad_manifest(bench.model_dir))
    status = bench.operator.deploy(bench.thing, bench.components(version, deployed["inference"]))
    assert status["status"] == "FAILED", status
    details = status["statusDetails"]
    assert details["detailed-deployment-status"] == "FAILED_ROLLBACK_COMPLETE"
    assert "COMPONENT_BROKEN" in json.loads(details["deployment-error-stack"])
    assert INFERENCE in details["deployment-failure-cause"]
    assert _states(bench)[MODEL] == (deployed["model"], "FINISHED")
    _serving(bench, "1.0.1")


def test_component_crashing_on_start_ends_broken_and_is_rolled_back(
    bench: Bench, deployed: dict[str, str]
) -> None:
    version = bench.publisher.inference(crashing_inference_artifact())
    assert version != deployed["inference"]
    status = bench.operator.deploy(bench.thing, bench.components(deployed["model"], version))
    assert status["status"] == "FAILED", status
    details = status["statusDetails"]
    assert details["detailed-deployment-status"] == "FAILED_ROLLBACK_COMPLETE"
    assert "BROKEN" in details["deployment-failure-cause"]
    assert json.loads(details["deployment-error-types"]) == ["COMPONENT_ERROR"]
    log = (bench.root / "logs" / f"{INFERENCE}.log").read_text()
    assert f"[{INFERENCE} {version}] state -> BROKEN" in log
    assert _states(bench)[INFERENCE] == (deployed["inference"], "RUNNING")
    _serving(bench, "1.0.1")


def test_another_component_asks_over_local_pubsub(bench: Bench, deployed: dict[str, str]) -> None:
    recipe, artifact = local_client_recipe(bench.publisher.bucket, "1.0.0", bench.golden["rows"][0])
    bench.publisher.publish(recipe, artifact)
    components = bench.components(deployed["model"], deployed["inference"])
    components[LOCAL_CLIENT] = {
        "version": "1.0.0",
        "configurationUpdate": {"merge": json.dumps({"PythonPath": sys.executable})},
    }
    status = bench.operator.deploy(bench.thing, components)
    assert status["status"] == "SUCCEEDED", status
    answer_file = bench.root / "work" / LOCAL_CLIENT / "answer.json"
    deadline = time.monotonic() + 20
    while not answer_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    doc = json.loads(answer_file.read_text())
    answer = doc["answers"][0]
    assert answer["id"] == "local-1" and answer["ok"] is True and answer["model"]["version"] == "1.0.1"
    assert doc["denied"] == "UnauthorizedError"  # its accessControl grants no IoT Core topic
    assert _states(bench)[LOCAL_CLIENT] == ("1.0.0", "FINISHED")
    # removing it from the deployment stops and cleans it
    status = bench.operator.deploy(bench.thing, bench.components(deployed["model"], deployed["inference"]))
    assert status["status"] == "SUCCEEDED", status
    assert LOCAL_CLIENT not in _states(bench)
    assert not (bench.root / "work" / LOCAL_CLIENT).exists()
    assert not (bench.root / "packages" / "artifacts" / LOCAL_CLIENT).exists() or not any(
        (bench.root / "packages" / "artifacts" / LOCAL_CLIENT).iterdir()
    )


def test_core_restart_restores_components(bench: Bench, deployed: dict[str, str]) -> None:
    bench.stop_core()
    core = bench.start_core()
    assert core.current_target().versions == {MODEL: deployed["model"], INFERENCE: deployed["inference"]}
    # a restarted core reruns each component's lifecycle (Install, then Run imports onnxruntime):
    # on a loaded machine that alone has taken more than the 15 s a deployed device gets
    _serving(bench, "1.0.1", timeout=60.0)
    assert _states(bench)[INFERENCE] == (deployed["inference"], "RUNNING")
