"""`mlops-edge infer` and `mqtt pub/sub` against an in-memory broker and device (issue 13, item 8).

Every mistake a user can type ends in one clear line (exit 1 or click's usage error 2), never a
traceback; whatever the device answers is shown, its errors included.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_edge.commands import mqtt as mqtt_commands
from mlops_edge.main import main

THING = "mlops-edge-device-01"


class FakeDevice:
    """A client whose publishes reach a device that answers like the inference component."""

    def __init__(self, answer: Any = None) -> None:
        self.handlers: dict[str, Any] = {}
        self.published: list[tuple[str, Any]] = []
        self.answer = answer  # a function request -> message on the result topic, or None: silent

    def __enter__(self) -> FakeDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def subscribe(self, topic: str, handler: Any, **options: Any) -> None:
        self.handlers[topic] = handler

    def publish(self, topic: str, payload: Any, **options: Any) -> None:
        self.published.append((topic, payload))
        if self.answer is None:
            return
        request = json.loads(payload)
        message = json.dumps(self.answer(request)).encode()
        result_topic = topic.replace("/request", "/result")
        threading.Timer(0.01, self.handlers[result_topic], args=(result_topic, message)).start()


def _component_answer(request: dict[str, Any]) -> dict[str, Any]:
    """What the inference component answers (MISSING_ID with a null id for a non-string id)."""
    rid = request.get("id")
    if not isinstance(rid, str) or not rid:
        error = {"code": "MISSING_ID", "message": "request needs a non-empty string 'id'"}
        return {"id": None, "ok": False, "error": error, "thing": THING}
    return {"id": rid, "ok": True, "predictions": [{"value": 1.5}], "thing": THING}


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> FakeDevice:
    fake = FakeDevice(_component_answer)
    monkeypatch.setattr(mqtt_commands, "_connect", lambda: fake)
    return fake


def _infer(*args: str) -> Any:
    return CliRunner().invoke(main, ["infer", *args])


def test_an_answer_is_printed(device: FakeDevice) -> None:
    result = _infer("--thing", THING, "--json", '{"id": "a1", "rows": [[1, 2]]}')
    assert result.exit_code == 0, result.output
    assert '"value": 1.5' in result.output and "round trip" in result.output


def test_the_devices_error_for_a_non_string_id_is_shown_not_no_answer(device: FakeDevice) -> None:
    """`{"id": 5}` got MISSING_ID from the device while the CLI said "no answer"."""
    result = _infer("--thing", THING, "--json", '{"id": 5, "rows": [[1, 2]]}', "--timeout", "2")
    assert result.exit_code == 1
    assert "MISSING_ID" in result.output and "no answer" not in result.output
    assert "non-empty string" in result.output


def test_a_rejection_inside_an_overload_message_is_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(request: dict[str, Any]) -> dict[str, Any]:
        error = {"code": "THROTTLED", "message": "100 requests are already waiting"}
        others = {"id": "someone-else", "ok": False, "error": error}
        return {"results": [others, {"id": request["id"], "ok": False, "error": error}]}

    fake = FakeDevice(throttled)
    monkeypatch.setattr(mqtt_commands, "_connect", lambda: fake)
    result = _infer("--thing", THING, "--json", '{"id": "mine", "rows": [[1, 2]]}')
    assert result.exit_code == 1
    assert "THROTTLED" in result.output and '"mine"' in result.output and "someone-else" not in result.output


def test_a_silent_device_is_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_commands, "_connect", lambda: FakeDevice(None))
    result = _infer("--thing", THING, "--json", '{"rows": [[1, 2]]}', "--timeout", "0.2")
    assert result.exit_code == 1 and "no answer from" in result.output


@pytest.mark.parametrize(
    "payload", ["[" * 5000 + "]" * 5000, '{"id": "x", "rows": ' + "[" * 5000 + "]" * 5000 + "}"]
)
def test_deeply_nested_json_is_a_clear_error(device: FakeDevice, payload: str) -> None:
    result = _infer("--thing", THING, "--json", payload)
    assert result.exit_code == 1, result.output
    assert "too deeply" in result.output
    assert not isinstance(result.exception, RecursionError) and "Traceback" not in result.output
    assert device.published == []


@pytest.mark.parametrize("thing", ["+", "#", "a/b", "", "x" * 129, "thing name", "ü"])
def test_a_thing_name_aws_iot_would_refuse_is_refused_before_connecting(
    device: FakeDevice, thing: str
) -> None:
    result = _infer("--thing", thing, "--json", '{"rows": [[1, 2]]}')
    assert result.exit_code == 2, result.output  # click's usage error, not a paho ValueError
    assert "not a thing name" in result.output and "a-z A-Z 0-9 : _ -" in result.output
    assert not isinstance(result.exception, ValueError)
    assert device.published == []


@pytest.mark.parametrize("thing", ["a", "Thing_1:x-y", "x" * 128])
def test_valid_thing_names_pass(device: FakeDevice, thing: str) -> None:
    assert _infer("--thing", thing, "--json", '{"rows": [[1]]}').exit_code == 0


@pytest.mark.parametrize(
    ("command", "topic", "message"),
    [
        ("pub", "edge/+/inference/request", "cannot contain + or #"),
        ("pub", "edge/#", "cannot contain + or #"),
        ("pub", "", "is empty"),
        ("sub", "edge/#/result", "must be a whole level and the last one"),
        ("sub", "edge/a+/result", "'+' must be a whole level"),
        ("pub", "t/" + "x" * 300, "256 bytes"),
    ],
)
def test_topics_mqtt_would_refuse_are_clear_errors(
    device: FakeDevice, command: str, topic: str, message: str
) -> None:
    args = ["mqtt", command, topic] + (["{}"] if command == "pub" else ["--timeout", "0.1"])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert message in result.output and not isinstance(result.exception, ValueError)


def test_a_deeply_nested_payload_to_publish_is_a_clear_error(device: FakeDevice) -> None:
    result = CliRunner().invoke(main, ["mqtt", "pub", "edge/x/inference/request", "[" * 5000])
    assert result.exit_code == 1 and "too deeply" in result.output
