"""The inference component's request handling, against in-memory messaging and a stub engine."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from inference_component.model_dir import ModelNotFound, find_model_dir
from inference_component.service import InferenceService, Settings
from inference_component.telemetry import Telemetry

from edge_runtime.inference import InvalidInput

from .conftest import INFERENCE_SRC
from .fakes import FakeMessaging

THING = "thing-7"


class LookalikeInvalidInput(ValueError):
    """Not the engine's error, whatever its name and shape: must not be taken for a caller's mistake."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


LookalikeInvalidInput.__name__ = LookalikeInvalidInput.__qualname__ = "InvalidInput"


class StubEngine:
    """Sums each row; rejects rows of the wrong width like the real engine does.

    A request whose row is ``["gate", "gate"]`` waits in predict until ``gate`` is set
    (``in_predict`` tells the test it is there): inference that cannot keep up.
    """

    manifest: ClassVar[dict[str, Any]] = {"name": "demo", "model_version": "1.0.3", "features": ["a", "b"]}

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.in_predict = threading.Event()

    def predict(self, payload: Any) -> dict[str, Any]:
        rows = payload.get("instances") if isinstance(payload, dict) else payload  # a bare row too
        if rows == [["gate", "gate"]]:
            self.in_predict.set()
            self.gate.wait(10)
            rows = [[0, 0]]
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


CONFIG = {
    "RequestTopic": "edge/{iot:thingName}/inference/request",
    "ResultTopic": "edge/{iot:thingName}/inference/result",
    "TelemetryTopic": "edge/{iot:thingName}/telemetry",
    "TelemetryIntervalSeconds": 0.05,
    "MaxRows": 3,
    "MaxRequestBytes": 2000,
}
REQUESTS = f"edge/{THING}/inference/request"


def _start(engine: Any = None, **config: Any) -> tuple[InferenceService, FakeMessaging]:
    messaging = FakeMessaging({**CONFIG, **config})
    service = InferenceService(
        engine or StubEngine(), messaging, Settings.from_config(messaging.configuration(), THING)
    )
    service.start()
    return service, messaging


@pytest.fixture
def running() -> tuple[InferenceService, FakeMessaging]:
    service, messaging = _start()
    yield service, messaging
    service.stop()


def _messages(messaging: FakeMessaging, channel: str = "iot") -> list[dict[str, Any]]:
    topic = f"edge/{THING}/inference/result" if channel == "iot" else "edge/inference/result"
    return [json.loads(p) for c, t, p in list(messaging.published) if c == channel and t == topic]


def _flatten(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every result, whether it came alone or in a ``{"results": [...]}`` rejection message."""
    return [r for m in messages for r in m.get("results", [m])]


def _results(messaging: FakeMessaging, channel: str = "iot", count: int = 1) -> list[dict[str, Any]]:
    """The results published so far, once there are at least ``count`` (the worker is a thread)."""
    assert messaging.wait_for(lambda _: len(_flatten(_messages(messaging, channel))) >= count, 5), _messages(
        messaging, channel
    )
    return _flatten(_messages(messaging, channel))


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
    assert iot["thing"] == THING and iot["latency_ms"] >= 0 and iot["queued_ms"] >= 0
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
    (b'{"id": "", "instances": [[1, 2]]}', None, "MISSING_ID"),  # null, as documented (was "")
    (b'{"body": "{\\"instances\\": [[1, 2]]}"}', None, "MISSING_ID"),  # no id in the body either
    (b'{"id": "x1"}', "x1", "NO_ROWS"),
    (b'{"id": "x2", "instances": [[1, 2, 3]]}', "x2", "WRONG_WIDTH"),
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
    assert _results(messaging, count=2)[-1]["ok"] is True


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 5000 + b"]" * 5000,
        b"[" * 5000,
        b'{"id": "deep", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"body": "' + b"[" * 5000 + b"]" * 5000 + b'"}',
    ],
    ids=["top-level", "unclosed", "inside", "in-body"],
)
def test_nesting_deeper_than_the_parser_is_the_callers_error_not_internal(payload: bytes) -> None:
    """5,000 nested arrays used to raise RecursionError inside the service: INTERNAL_ERROR."""
    service, messaging = _start(MaxRequestBytes=100_000)
    try:
        messaging.inject_iot(REQUESTS, payload)
        (result,) = _results(messaging)
        assert result["ok"] is False and result["id"] is None
        assert result["error"]["code"] == "INVALID_JSON"
        assert "too deeply" in result["error"]["message"]
    finally:
        service.stop()


def test_a_lambda_style_event_carries_its_id_in_the_body(
    running: tuple[InferenceService, FakeMessaging],
) -> None:
    """The README's ``{"body": "<request>"}`` example: the whole request, id included, is the body."""
    _, messaging = running
    inner = json.dumps({"id": "in-body", "instances": [[1, 2]]})
    messaging.inject_iot(REQUESTS, json.dumps({"body": inner}).encode())
    messaging.inject_iot(REQUESTS, json.dumps({"id": "beside", "body": "ignored by the stub"}).encode())
    first, second = _results(messaging, count=2)
    assert first["id"] == "in-body" and first["ok"] is True and first["predictions"] == [{"value": 3.0}]
    assert second["id"] == "beside"  # an id beside the body is the request's id as it always was


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


def _wait(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _request(rid: str, row: list[Any] | None = None) -> bytes:
    return json.dumps({"id": rid, "instances": [row or [1, 2]]}).encode()


def _inject_in_background(messaging: FakeMessaging, payload: bytes) -> None:
    """Deliver from another thread: an idle service answers on the delivering thread itself."""
    threading.Thread(target=messaging.inject_iot, args=(REQUESTS, payload), daemon=True).start()


def _answered_once(results: list[dict[str, Any]], ids: list[str]) -> None:
    seen = [r["id"] for r in results]
    assert sorted(seen) == sorted(ids), seen  # every request answered, none twice, none lost


def test_results_waiting_for_the_publish_limit_make_new_requests_throttled() -> None:
    """The nucleus holds results (its IoT Core throttle): a bounded queue, then THROTTLED."""
    service, messaging = _start(MaxInflightPublishes=2, MaxQueuedRequests=3)
    try:
        messaging.hold_iot = True
        ids = [f"t{i}" for i in range(10)]
        messaging.inject_iot(REQUESTS, _request(ids[0]))
        messaging.inject_iot(REQUESTS, _request(ids[1]))
        _results(messaging, count=2)  # both in flight, neither acknowledged
        messaging.inject_iot(REQUESTS, _request(ids[2]))
        _wait(lambda: service._waiting_to_publish)  # the worker holds t2, waiting for a slot
        for rid in ids[3:6]:
            messaging.inject_iot(REQUESTS, _request(rid))  # queued: 3 of 3
        for rid in ids[6:]:
            messaging.inject_iot(REQUESTS, _request(rid))  # rejected at once
        rejected = _results(messaging, count=6)[2:]
        assert [r["id"] for r in rejected] == ids[6:]
        assert {r["error"]["code"] for r in rejected} == {"THROTTLED"}
        assert all(r["ok"] is False and r["error"]["message"] for r in rejected)
        # the four rejections left together, in one message (the publish limit is the problem)
        assert sum("results" in m for m in _messages(messaging)) == 1
        messaging.release()
        results = _results(messaging, count=10)
        _answered_once(results, ids)
        assert [r["id"] for r in results if r["ok"]] == ids[:6]  # in arrival order
        snapshot = service.telemetry.snapshot()
        assert snapshot["rejected"] == {"THROTTLED": 4}
        assert snapshot["requests"] == 10 and snapshot["errors"] == 4
    finally:
        service.stop()


def test_inference_that_cannot_keep_up_makes_new_requests_busy() -> None:
    engine = StubEngine()
    service, messaging = _start(engine, MaxQueuedRequests=2)
    try:
        _inject_in_background(messaging, _request("slow", ["gate", "gate"]))
        assert engine.in_predict.wait(5)
        messaging.inject_iot(REQUESTS, _request("q1"))
        messaging.inject_iot(REQUESTS, _request("q2"))
        messaging.inject_iot(REQUESTS, _request("b1"))
        messaging.inject_local("edge/inference/request", _request("b2"))
        (busy,) = _results(messaging)
        assert (busy["id"], busy["error"]["code"]) == ("b1", "BUSY")
        (local,) = _results(messaging, "local")  # a local rejection goes back on the local topic
        assert (local["id"], local["error"]["code"]) == ("b2", "BUSY")
        engine.gate.set()
        _answered_once(_results(messaging, count=4), ["b1", "slow", "q1", "q2"])
        assert service.telemetry.snapshot()["rejected"] == {"BUSY": 2}
    finally:
        engine.gate.set()
        service.stop()


def test_stopping_answers_what_was_queued() -> None:
    engine = StubEngine()
    service, messaging = _start(engine)
    _inject_in_background(messaging, _request("slow", ["gate", "gate"]))
    assert engine.in_predict.wait(5)
    for i in range(5):
        messaging.inject_iot(REQUESTS, _request(f"s{i}"))
    threading.Timer(0.1, engine.gate.set).start()
    service.stop()
    messaging.inject_iot(REQUESTS, _request("late"))  # after stop: refused, still answered
    service._flush_rejections()
    _answered_once(_results(messaging, count=7), ["slow", *[f"s{i}" for i in range(5)], "late"])


def test_an_idle_service_answers_on_the_delivering_thread() -> None:
    """No hand-off to the worker when nothing waits: the round trip stays what it was."""
    service, messaging = _start()
    try:
        messaging.inject_iot(REQUESTS, _request("now"))
        assert [r["id"] for r in _flatten(_messages(messaging))] == ["now"]  # already published
    finally:
        service.stop()


def test_telemetry_reports_rejections_and_the_queue(running: tuple[InferenceService, FakeMessaging]) -> None:
    service, messaging = running
    service.publish_telemetry()
    doc = next(json.loads(p) for _, t, p in reversed(messaging.published) if t.endswith("/telemetry"))
    assert doc["rejected"] == {} and doc["publish_failures"] == 0
    assert doc["queue"] == {"depth": 0, "limit": 100}


@pytest.fixture(scope="module")
def diabetes_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.unit.ml.helpers import build

    return build(tmp_path_factory.mktemp("component-model"), "diabetes", num_round=5).out_dir


def test_one_row_limit_one_error_whatever_the_shape(diabetes_model: Path) -> None:
    """MaxRows is the engine's batch limit: the same error for every shape (was TOO_MANY_ROWS
    for some shapes and the engine's batch_too_large, at another limit, for the others)."""
    from inference_component.__main__ import load_engine

    engine = load_engine(diabetes_model, max_rows=3, max_bytes=100_000)
    service, messaging = _start(engine, MaxRows=3, MaxRequestBytes=100_000)
    try:
        features = engine.features
        row = [0.01] * len(features)
        record = dict(zip(features, row, strict=True))
        shapes: dict[str, Any] = {
            "instances": {"instances": [row] * 4},
            "records": {"records": [record] * 4},
            "rows": {"rows": [row] * 4},
            "inputs": {"inputs": [row] * 4},
            "body": {"body": json.dumps({"rows": [row] * 4})},
        }
        for i, (name, body) in enumerate(shapes.items()):
            messaging.inject_iot(REQUESTS, json.dumps({"id": name, **body}).encode())
            result = _results(messaging, count=i + 1)[-1]
            assert result["id"] == name and result["ok"] is False, result
            assert result["error"]["code"] == "batch_too_large", (name, result)
            assert "the limit is 3" in result["error"]["message"]
        messaging.inject_iot(REQUESTS, json.dumps({"id": "three", "rows": [row] * 3}).encode())
        ok = _results(messaging, count=len(shapes) + 1)[-1]
        assert ok["ok"] is True and len(ok["predictions"]) == 3
    finally:
        service.stop()


def test_the_recipe_default_row_limit_is_the_engines_limit() -> None:
    import yaml

    recipe = yaml.safe_load((INFERENCE_SRC.parent / "recipe.yaml").read_text())
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    settings = Settings.from_config(defaults, THING)
    assert settings.max_rows == defaults["MaxRows"] == Settings.from_config({}, THING).max_rows
    assert settings.max_queued_requests == defaults["MaxQueuedRequests"]
    assert settings.max_inflight_publishes == defaults["MaxInflightPublishes"]


def test_the_readmes_lambda_style_example_is_answered(diabetes_model: Path) -> None:
    """The README's ``{"body": ...}`` example, as printed (its ``[...]`` filled with a row)."""
    import re

    from inference_component.__main__ import load_engine

    readme = (INFERENCE_SRC.parents[2] / "README.md").read_text()
    (example,) = re.findall(r'`(\{"body": .*?\})`', readme)
    engine = load_engine(diabetes_model)
    row = json.dumps([0.01] * len(engine.features))
    service, messaging = _start(engine)
    try:
        messaging.inject_iot(REQUESTS, example.replace("[...]", row).encode())
        (result,) = _results(messaging)
        assert result["ok"] is True, result
        assert result["id"] == "3" and len(result["predictions"]) == 1
    finally:
        service.stop()


def test_a_result_over_iot_cores_message_limit_is_an_error_that_says_what_fits() -> None:
    """AWS IoT Core refuses messages over 128 KiB: such a result would never reach the caller."""
    service, messaging = _start(MaxRequestBytes=10**7)
    try:
        rows = [[1, 2]] * 10_000  # ~16 bytes of result per row: ~160 KB
        request = json.dumps({"id": "big", "instances": rows}).encode()
        messaging.inject_iot(REQUESTS, request)
        (result,) = _results(messaging)
        assert (result["id"], result["error"]["code"]) == ("big", "RESULT_TOO_LARGE")
        fits = int(result["error"]["message"].rsplit("send at most ", 1)[1].split()[0])
        assert 5_000 < fits < 10_000
        messaging.inject_iot(REQUESTS, json.dumps({"id": "fits", "instances": rows[:fits]}).encode())
        assert _results(messaging, count=2)[-1]["ok"] is True
        messaging.inject_local("edge/inference/request", request)  # local pub/sub has no such limit
        assert _results(messaging, "local")[0]["ok"] is True
        assert all(len(p) <= 128 * 1024 for c, _, p in messaging.published if c == "iot")
    finally:
        service.stop()


def test_an_id_too_long_to_echo_is_refused_with_a_null_id(
    running: tuple[InferenceService, FakeMessaging],
) -> None:
    _, messaging = running
    messaging.inject_iot(REQUESTS, _request("x" * 257))
    messaging.inject_iot(REQUESTS, _request("y" * 256))
    too_long, longest = _results(messaging, count=2)
    assert (too_long["id"], too_long["error"]["code"]) == (None, "MISSING_ID")
    assert "at most 256 characters" in too_long["error"]["message"]
    assert longest["id"] == "y" * 256 and longest["ok"] is True


def test_rejection_messages_stay_within_iot_cores_message_limit() -> None:
    service, messaging = _start(MaxInflightPublishes=1, MaxQueuedRequests=1)
    try:
        messaging.hold_iot = True
        messaging.inject_iot(REQUESTS, _request("first"))
        messaging.inject_iot(REQUESTS, _request("second"))
        _wait(lambda: service._waiting_to_publish)
        messaging.inject_iot(REQUESTS, _request("third"))  # queued
        ids = [f"{i:04d}-" + "z" * 250 for i in range(1000)]
        with service._cond:  # all refused within one flush period
            for rid in ids:
                service._rejections.append(service._error(rid, "THROTTLED", "waiting"))
        service._flush_rejections()
        batches = [p for c, t, p in messaging.published if c == "iot" and b'"results"' in p]
        assert len(batches) >= 2 and all(len(p) <= 128 * 1024 for p in batches)
        assert sorted(r["id"] for p in batches for r in json.loads(p)["results"]) == ids
    finally:
        messaging.release()
        service.stop()
