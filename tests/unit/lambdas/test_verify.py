"""VerifyOnDevice: answers compared within tolerance, model version checked, latency reported;
devices verified together over one connection, results in S3, failures named with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.core.detail import read_detail, write_detail
from lambdas.core.exceptions import ConfigurationError, VerificationFailed
from lambdas.core.verify import (
    RESULT_FILTER,
    check_device,
    close,
    latency_ms,
    mqtt_settings,
    verify_on_device,
)
from pipeline.mqtt import Exchange

from .conftest import BUCKET, assert_selectable

GOLDEN = {
    "features": ["a", "b"],
    "task": "binary",
    "rows": [[1.0, 2.0], [3.0, None]],
    "expected": [
        {"label": 1, "class": 1, "probabilities": {"0": 0.2, "1": 0.8}},
        {"label": 0, "class": 0, "probabilities": {"0": 0.9, "1": 0.1}},
    ],
    "tolerance": {"abs": 1e-5, "rel": 1e-4},
}


def test_close_compares_numbers_within_tolerance_and_the_rest_exactly() -> None:
    assert close({"value": 1.000001}, {"value": 1.0}, 1e-5, 0)
    assert not close({"value": 1.1}, {"value": 1.0}, 1e-5, 1e-4)
    assert close([1, "x"], [1, "x"], 0, 0) and not close([1, "x"], [1, "y"], 0, 0)
    assert not close({"a": 1}, {"a": 1, "b": 2}, 1, 1)
    assert not close(True, 1, 1, 1) or close(True, True, 0, 0)


def test_latency_is_nearest_rank_to_the_microsecond() -> None:
    assert latency_ms([]) == {"p50": None, "p99": None}
    assert latency_ms([5.0, 1.0, 3.0]) == {"p50": 3.0, "p99": 5.0}
    ten = [float(i) + 0.00049 for i in range(1, 11)]
    assert latency_ms(ten) == {"p50": 5.0, "p99": 10.0}  # 10 samples: p99 is the slowest one


class FakeClient:
    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def device_answers(mode: str, calls: list[dict[str, Any]] | None = None) -> Any:
    """A ``request_response_many`` stand-in: answers like the inference component, or wrongly."""

    def respond(client: Any, exchanges: list[Exchange], **options: Any) -> dict:
        if calls is not None:
            calls.append({"exchanges": exchanges, **options})
        out = {}
        for exchange in exchanges:
            thing = exchange.request_topic.split("/")[1]
            assert exchange.result_topic == f"edge/{thing}/inference/result"
            for i, request in enumerate(exchange.requests):
                if mode == "silent" and thing == "core-b":
                    continue
                expected = GOLDEN["expected"][GOLDEN["rows"].index(request["rows"][0])]
                if mode == "wrong" and thing == "core-b":
                    expected = {**expected, "label": 1 - expected["label"]}
                version = "1.0.2" if mode == "old" else "1.0.3"
                out[request["id"]] = (
                    {
                        "id": request["id"],
                        "ok": True,
                        "predictions": [expected],
                        "model": {"name": "m", "version": version},
                        "latency_ms": 0.5,
                    },
                    1.0 + i,
                )
        return out

    return respond


STATUS_URI = f"s3://{BUCKET}/state/executions/exec-1/deployment-status.json"


def deployment_checked(s3: Any, config: dict[str, Any], things: list[str]) -> None:
    """The deployment check's S3 record: VerifyOnDevice verifies the devices that succeeded."""
    devices = [{"thing": t, "status": "SUCCEEDED", "detail": "SUCCESSFUL"} for t in things]
    write_detail(s3, config, "deployment-status.json", {"deployment_id": "d-1", "devices": devices})


@pytest.fixture
def event(s3: Any, config: dict[str, Any]) -> dict[str, Any]:
    s3.put_object(Bucket=BUCKET, Key="g/golden.json", Body=json.dumps(GOLDEN))
    config["verification"] = {"requests": 4, "timeout_s": 1, "tolerance": None}
    deployment_checked(s3, config, ["core-a", "core-b"])
    return {
        "config": config,
        "deployment": {"deployment_id": "d-1", "device_count": 2},
        "deployment_status": {"status": "SUCCEEDED", "devices_uri": STATUS_URI},
        "registry": {"model": {"golden_uri": f"s3://{BUCKET}/g/golden.json"}},
        "components": {"model": {"version": "1.0.3"}},
    }


def test_every_device_verified_at_once(event: dict[str, Any], s3: Any) -> None:
    calls: list[dict[str, Any]] = []
    out = verify_on_device(event, s3=s3, connect=FakeClient, exchange=device_answers("good", calls))
    assert_selectable("verify_on_device", out)
    assert out["passed"] and out["summary"] == "2 of 2 device(s) verified with model 1.0.3"
    assert out["counts"] == {
        "targeted": 2, "verified": 2, "failed": 0, "requests_sent": 8, "requests_matched": 8
    }  # fmt: skip
    # One exchange for both devices over one wildcard subscription, one overall timeout.
    (call,) = calls
    assert [e.request_topic for e in call["exchanges"]] == [
        "edge/core-a/inference/request",
        "edge/core-b/inference/request",
    ]
    assert call["subscriptions"] == [RESULT_FILTER] and call["timeout_s"] == 1.0
    assert call["max_publish_per_s"] == 100.0
    detail = read_detail(s3, out["devices_uri"])
    assert detail is not None and out["devices_uri"].endswith("/state/executions/exec-1/verification.json")
    device = detail["devices"][0]
    assert device["sent"] == device["matched"] == 4 and device["latency_ms"] == {"p50": 2.0, "p99": 4.0}
    assert device["device_latency_ms"]["p50"] == 0.5 and device["model_versions"] == ["1.0.3"]


@pytest.mark.parametrize(
    ("mode", "fragment"),
    [
        ("wrong", "core-b: 0/4 matched"),
        ("silent", "core-b: 0/4 matched (no answer within"),
        ("old", "model version 1.0.2"),
    ],
)
def test_failures_name_the_device_and_the_problem(
    event: dict[str, Any], s3: Any, mode: str, fragment: str
) -> None:
    with pytest.raises(VerificationFailed) as info:
        verify_on_device(event, s3=s3, connect=FakeClient, exchange=device_answers(mode))
    assert fragment in str(info.value)
    detail = read_detail(s3, f"s3://{BUCKET}/state/executions/exec-1/verification.json")
    assert detail is not None and detail["passed"] is False
    assert {d["thing"]: d["passed"] for d in detail["devices"]}["core-a"] is (mode != "old")


def test_a_fleet_of_silent_devices_is_counted_and_ten_are_named(
    event: dict[str, Any], s3: Any, config: dict[str, Any]
) -> None:
    things = [f"core-{i:03d}" for i in range(40)]
    deployment_checked(s3, config, things)
    with pytest.raises(VerificationFailed) as info:
        verify_on_device(event, s3=s3, connect=FakeClient, exchange=lambda client, exchanges, **_: {})
    message = str(info.value)
    assert message.startswith("0 of 40 device(s) verified")
    assert "core-009: 0/4 matched (no answer within" in message and "to any of 4 request(s)" in message
    assert "core-010" not in message and "and 30 more (every device: s3://" in message


def test_a_plan_longer_than_the_functions_time_fails_before_sending(event: dict[str, Any], s3: Any) -> None:
    event["config"]["verification"] = {"requests": 1000, "timeout_s": 20, "tolerance": None}
    with pytest.raises(ConfigurationError, match=r"lower verification\.requests"):
        verify_on_device(event, s3=s3, connect=FakeClient, exchange=device_answers("good"), time_budget_s=30)


def test_without_the_deployment_checks_record_there_is_nothing_to_verify(
    event: dict[str, Any], s3: Any
) -> None:
    event["deployment_status"]["devices_uri"] = f"s3://{BUCKET}/state/executions/other/x.json"
    with pytest.raises(VerificationFailed, match="cannot be read"):
        verify_on_device(event, s3=s3, connect=FakeClient, exchange=device_answers("good"))


def test_check_device_reports_device_errors() -> None:
    requests = [{"id": "r1", "rows": [[1.0]]}]
    answers = {"r1": ({"id": "r1", "ok": False, "error": {"code": "bad_shape", "message": "x"}}, 2.0)}
    out = check_device(
        "t", requests, [{"value": 1}], answers, model_version="1.0.1", tolerance={"abs": 0, "rel": 0}
    )
    assert not out["passed"] and "bad_shape" in out["problems"][0]


def test_check_device_names_missing_answers_once() -> None:
    requests = [{"id": f"r{i}", "rows": [[1.0]]} for i in range(3)]
    answer = ({"id": "r0", "ok": True, "predictions": [{"value": 1}], "model": {"version": "1"}}, 2.0)
    kwargs: dict[str, Any] = {"model_version": "1", "tolerance": {"abs": 0, "rel": 0}, "waited_s": 20.0}
    silent = check_device("t", requests, [{"value": 1}] * 3, {}, **kwargs)
    assert silent["problems"] == ["no answer within 20 s to any of 3 request(s) (offline?)"]
    partial = check_device("t", requests, [{"value": 1}] * 3, {"r0": answer}, **kwargs)
    assert partial["problems"] == ["no answer within 20 s to 2 of 3 request(s)"] and partial["matched"] == 1


def test_mqtt_settings_from_paths_and_from_a_secret(tmp_path: Any) -> None:
    env = {
        "MLOPS_EDGE_MQTT_HOST": "h",
        "MLOPS_EDGE_MQTT_PORT": "1883",
        "MLOPS_EDGE_MQTT_CA": "ca",
        "MLOPS_EDGE_MQTT_CERT": "c",
        "MLOPS_EDGE_MQTT_KEY": "k",
    }
    settings = mqtt_settings(env, secrets=lambda: None, iot=lambda: None)
    assert (settings.host, settings.port, settings.cert_path) == ("h", 1883, "c")

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {
                "SecretString": json.dumps({"certificate_pem": "C", "private_key_pem": "K", "ca_pem": "A"})
            }

    class Iot:
        def describe_endpoint(self, endpointType: str) -> dict[str, str]:
            assert endpointType == "iot:Data-ATS"
            return {"endpointAddress": "abc-ats.iot.us-east-1.amazonaws.com"}

    settings = mqtt_settings({"MLOPS_EDGE_MQTT_SECRET_ID": "edge/verify"}, secrets=Secrets, iot=Iot)
    assert settings.host.endswith("amazonaws.com") and settings.port == 8883
    assert Path(settings.key_path).read_text() == "K"
    with pytest.raises(ConfigurationError, match="MLOPS_EDGE_MQTT_CA"):
        mqtt_settings({"MLOPS_EDGE_MQTT_HOST": "h"}, secrets=lambda: None, iot=lambda: None)


@pytest.mark.parametrize(
    ("secret_string", "says"),
    [
        ("x7#Qp!generated-password-32chars", "still holds the placeholder"),
        ('["certificate_pem"]', "must be a JSON object"),
        ('{"certificate_pem": "-----BEGIN CERTIFICATE-----"}', "lacks private_key_pem"),
        ('{"certificate_pem": " ", "private_key_pem": "k"}', "lacks certificate_pem"),
    ],
)
def test_a_secret_that_is_not_set_up_says_how_to_set_it_up(secret_string: str, says: str) -> None:
    """The stack creates the secret with a generated string; until the manual step is done, the
    cause must say what to do, not ``JSONDecodeError`` (which ended every first run in Rollback)."""

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {"SecretString": secret_string}

    with pytest.raises(ConfigurationError, match=says) as caught:
        mqtt_settings({"MLOPS_EDGE_MQTT_SECRET_ID": "mlops/verifier"}, secrets=Secrets, iot=lambda: None)
    assert "docs/deploy-aws.md" in str(caught.value) and "put-secret-value" in str(caught.value)
