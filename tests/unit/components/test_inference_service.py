"""The inference component's request handling, against in-memory messaging and a stub engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from inference_component.model_dir import ModelNotFound, find_model_dir
from inference_component.service import InferenceService, Settings
from inference_component.telemetry import Telemetry

from edge_runtime.inference import InvalidInput

from .fakes import FakeMessaging

THING = "thing-7"


class LookalikeInvalidInput(ValueError):
    """Not the engine's error, whatever its name and shape: must not be taken for a caller's mistake."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


LookalikeInvalidInput.__name__ = LookalikeInvalidInput.__qualname__ = "InvalidInput"


class StubEngine:
    """Sums each row; rejects rows of the wrong width like the real engine does."""

    manifest: ClassVar[dict[str, Any]] = {"name": "demo", "model_version": "1.0.3", "features": ["a", "b"]}

    def predict(self, payload: Any) -> dict[str, Any]:
        rows = payload.get("instances") if isinstance(payload, dict) else None
        if rows is None:
            raise InvalidInput("NO_ROWS", "no 'instances' in request")
        if rows and not isinstance(rows[0], list):
            rows = [rows]
        if rows == [["boom", "boom"]]:
            raise RuntimeError("engine exploded")
        if rows == [["lookalike", "lookalike"]]:
            raise LookalikeInvalidInput("LOOKS_LIKE_INPUT", "an engine bug dressed as InvalidInput")
        if rows == [["no-code", "no-code"]]:
            raise InvalidInput("", "InvalidInput without a code")
        for row in rows:
            if len(row) != 2:
                raise InvalidInput("WRONG_WIDTH", f"expected 2 features, got {len(row)}")
        return {
            "predictions": [{"value": float(sum(r))} for r in rows],
            "model": {"name": "demo", "version": "1.0.3"},
        }


@pytest.fixture
def running() -> tuple[InferenceService, FakeMessaging]:
    config = {
        "RequestTopic": "edge/{iot:thingName}/inference/request",
        "ResultTopic": "edge/{iot:thingName}/inference/result",
        "TelemetryTopic": "edge/{iot:thingName}/telemetry",
        "TelemetryIntervalSeconds": 0.05,
        "MaxRows": 3,
        "MaxRequestBytes": 2000,
    }
    messaging = FakeMessaging(config)
    service = InferenceService(
        StubEngine(), messaging, Settings.from_config(messaging.configuration(), THING)
    )
    service.start()
    yield service, messaging
    service.stop()


def _results(messaging: FakeMessaging, channel: str = "iot") -> list[dict[str, Any]]:
    topic = f"edge/{THING}/inference/result" if channel == "iot" else "edge/inference/result"
    return [json.loads(p) for c, t, p in messaging.published if c == channel and t == topic]


def test_subscribes_with_thing_name_resolved(running: tuple[InferenceService, FakeMessaging]) -> None:
    _, messaging = running
    assert list(messaging.iot_handlers) == [f"edge/{THING}/inference/request"]
    assert list(messaging.local_handlers) == ["edge/inference/request"]
    assert messaging.running


def test_answers_iot_and_local_requests(running: tuple[InferenceService, FakeMessaging]) -> None:
    _, messaging = running
    messaging.inject_iot(f"edge/{THING}/inference/request", b'{"id": "r1", "instances": [[1, 2], [3, 4]]}')
    messaging.inject_local("edge/inference/request", b'{"id": "r2", "instances": [5, 6]}')
    (iot,) = _results(messaging, "iot")
    assert iot["id"] == "r1" and iot["ok"] is True
    assert iot["predictions"] == [{"value": 3.0}, {"value": 7.0}]
    assert iot["model"] == {"name": "demo", "version": "1.0.3"}
    assert iot["thing"] == THING and iot["latency_ms"] >= 0
    (local,) = _results(messaging, "local")
    assert local["id"] == "r2" and local["predictions"] == [{"value": 11.0}]


BAD = [
    (b"", None, "EMPTY_REQUEST"),
    (b"{not json", None, "INVALID_JSON"),
    (b"\xff\xfe", None, "INVALID_JSON"),
    (b"[1, 2]", None, "INVALID_REQUEST"),
    (b'"text"', None, "INVALID_REQUEST"),
    (b'{"instances": [[1, 2]]}', None, "MISSING_ID"),
    (b'{"id": 5, "instances": [[1, 2]]}', None, "MISSING_ID"),
    (b'{"id": "x1"}', "x1", "NO_ROWS"),
    (b'{"id": "x2", "instances": [[1, 2, 3]]}', "x2", "WRONG_WIDTH"),
    (b'{"id": "x3", "instances": [[1, 2], [1, 2], [1, 2], [1, 2]]}', "x3", "TOO_MANY_ROWS"),
    (b'{"id": "x4", "instances": [["boom", "boom"]]}', "x4", "INTERNAL_ERROR"),
    (b'{"id": "x6", "instances": [["lookalike", "lookalike"]]}', "x6", "INTERNAL_ERROR"),
    (b'{"id": "x7", "instances": [["no-code", "no-code"]]}', "x7", "INTERNAL_ERROR"),
    (b'{"id": "x5", "pad": "' + b"x" * 3000 + b'"}', None, "TOO_LARGE"),
]


@pytest.mark.parametrize(("payload", "request_id", "code"), BAD)
def test_every_bad_request_gets_an_error_result(
    running: tuple[InferenceService, FakeMessaging], payload: bytes, request_id: str | None, code: str
) -> None:
    _, messaging = running
    messaging.inject_iot(f"edge/{THING}/inference/request", payload)
    (result,) = _results(messaging)
    assert result["ok"] is False and result["id"] == request_id
    assert result["error"]["code"] == code and result["error"]["message"]
    # and the service keeps serving
    messaging.inject_iot(f"edge/{THING}/inference/request", b'{"id": "after", "instances": [[1, 1]]}')
    assert _results(messaging)[-1]["ok"] is True


def test_telemetry_counts_and_percentiles(running: tuple[InferenceService, FakeMessaging]) -> None:
    _, messaging = running
    for i in range(5):
        messaging.inject_iot(
            f"edge/{THING}/inference/request", json.dumps({"id": str(i), "instances": [1, 2]}).encode()
        )
    messaging.inject_iot(f"edge/{THING}/inference/request", b"nope")
    topic = f"edge/{THING}/telemetry"

    def seen(published: list[tuple[str, str, bytes]]) -> bool:
        return any(t == topic and json.loads(p)["requests"] == 6 for _, t, p in published)

    assert messaging.wait_for(seen, timeout=3)
    doc = next(json.loads(p) for _, t, p in reversed(messaging.published) if t == topic)
    assert doc["errors"] == 1 and doc["model"]["version"] == "1.0.3" and doc["thing"] == THING
    assert doc["latency_ms"]["p99"] >= doc["latency_ms"]["p50"] >= 0


def test_telemetry_latency_is_nearest_rank_and_zero_before_any_success() -> None:
    telemetry = Telemetry()
    assert telemetry.snapshot()["latency_ms"] == {"p50": 0.0, "p99": 0.0, "window": 0}
    for ms in [10.000049, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]:
        telemetry.record(ms, ok=True)
    telemetry.record(None, ok=False)
    snap = telemetry.snapshot()
    # 10 samples: p99 is the slowest one (nearest rank), rounded to 0.1 us; p50 the 5th, not 5.5
    assert snap["latency_ms"] == {"p50": 5.0, "p99": 10.0, "window": 10}
    assert snap["requests"] == 11 and snap["errors"] == 1


def test_find_model_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        find_model_dir(tmp_path)
    d = tmp_path / "model"
    d.mkdir()
    (d / "model.json").write_text("{}")
    (d / "model.onnx").write_bytes(b"x")
    assert find_model_dir(tmp_path) == d
