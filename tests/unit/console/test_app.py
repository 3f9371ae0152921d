"""The console's web layer without AWS: the token, the Host check, the API's errors, the live stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from mlops_edge.console.app import create_app
from mlops_edge.console.backend import Backend, input_problems
from mlops_edge.console.mqtt_hub import ConsoleError, Message, check_topic, check_topic_filter
from pipeline.config import example_input

TOKEN = "t0ken-for-the-unit-tests-0123456789"
PORT = 8350
ARN = "arn:aws:states:us-east-1:123456789012:execution:mlops-edge-pipeline:run-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(i: int, kind: str, **details: Any) -> dict[str, Any]:
    return {"id": i, "type": kind, "timestamp": T0 + timedelta(seconds=i), **details}


HISTORY = [
    _event(1, "ExecutionStarted", executionStartedEventDetails={"input": "{}"}),
    _event(2, "TaskStateEntered", stateEnteredEventDetails={"name": "Configure", "input": "{}"}),
    _event(3, "TaskStateExited", stateExitedEventDetails={"name": "Configure", "output": '{"a": 1}'}),
    _event(4, "TaskStateEntered", stateEnteredEventDetails={"name": "Deploy", "input": "{}"}),
    _event(5, "TaskFailed", taskFailedEventDetails={"error": "DeploymentFailed", "cause": "device x broke"}),
    _event(6, "TaskStateExited", stateExitedEventDetails={"name": "Deploy", "output": "{}"}),
    _event(7, "FailStateEntered", stateEnteredEventDetails={"name": "PipelineFailed", "input": "{}"}),
    _event(
        8,
        "ExecutionFailed",
        executionFailedEventDetails={"error": "DeploymentFailed", "cause": "device x broke"},
    ),
]


class FakeStepFunctions:
    """The history grows by one event per read, as a running execution's does."""

    def __init__(self, history: list[dict[str, Any]], *, visible: int) -> None:
        self.history = history
        self.visible = visible
        self.started: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        events = self.history[: self.visible]
        self.visible = min(self.visible + 1, len(self.history))
        if kwargs.get("reverseOrder"):
            events = list(reversed(events))
        return {"events": events[: kwargs.get("maxResults", 1000)]}

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"executionArn": ARN}


class Clients:
    def __init__(self, sfn: FakeStepFunctions) -> None:
        self.sfn = sfn

    def __call__(self, service: str) -> Any:
        assert service == "stepfunctions", service
        return self.sfn


@pytest.fixture
def sfn() -> FakeStepFunctions:
    return FakeStepFunctions(HISTORY, visible=3)


@pytest.fixture
def client(sfn: FakeStepFunctions) -> TestClient:
    backend = Backend(
        Clients(sfn),
        find_state_machine=lambda _: "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-edge-pipeline",
        model_package_group="mlops-edge-models",
        component_prefix="com.example.mlopsedge",
    )
    app = create_app(backend, token=TOKEN, port=lambda: PORT, example_input=example_input, poll_s=0.01)
    return TestClient(app, base_url=f"http://127.0.0.1:{PORT}")


def _auth() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def test_every_url_needs_the_token(client: TestClient) -> None:
    for path in ("/executions", "/api/executions", "/static/app.js", "/api/input"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/input", headers={"Authorization": "token wrong"}).status_code == 401


def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_address(client: TestClient) -> None:
    response = client.get(f"/mqtt?token={TOKEN}&x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/mqtt?x=1"
    cookie = response.headers["set-cookie"]
    assert (
        f"mlops-edge-console-{PORT}={TOKEN}" in cookie
        and "HttpOnly" in cookie
        and "SameSite=Strict" in cookie
    )
    page = client.get("/mqtt?x=1")  # the client keeps the cookie
    assert page.status_code == 200 and 'aria-label="Main"' in page.text


def test_a_foreign_host_is_refused_even_with_the_token(client: TestClient) -> None:
    for host in (f"evil.example:{PORT}", "127.0.0.1:9999", f"192.168.1.5:{PORT}"):
        assert client.get("/api/input", headers={**_auth(), "Host": host}).status_code == 403, host
    assert client.get("/api/input", headers={**_auth(), "Host": f"localhost:{PORT}"}).status_code == 200


def test_changes_must_be_json_from_the_console_itself(client: TestClient) -> None:
    form = client.post("/api/executions", headers=_auth(), data={"input": "{}"})
    assert form.status_code == 403
    other = client.post(
        "/api/executions",
        headers={**_auth(), "Origin": "http://evil.example"},
        json={"input": example_input()},
    )
    assert other.status_code == 403


def test_an_input_that_breaks_the_schema_is_refused_at_its_paths_and_never_sent(
    client: TestClient, sfn: FakeStepFunctions
) -> None:
    bad = {**example_input(), "hyperparameters": {"max_depth": -3}, "surprise": 1}
    response = client.post("/api/executions", headers=_auth(), json={"input": bad})
    assert response.status_code == 400
    paths = [p["path"] for p in response.json()["problems"]]
    assert "$.hyperparameters.max_depth" in paths and "$" in paths  # additional property at the root
    assert sfn.started == []
    good = client.post("/api/executions", headers=_auth(), json={"input": example_input(), "name": "n1"})
    assert good.status_code == 200 and sfn.started[0]["name"] == "n1"
    assert json.loads(sfn.started[0]["input"]) == example_input()


def test_input_problems_for_what_is_not_an_object() -> None:
    assert input_problems([1])[0]["path"] == "$"
    assert input_problems(example_input()) == []


def _messages(text: str) -> list[tuple[str | None, str | None, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if fields:
            out.append((fields.get("id"), fields.get("event"), json.loads(fields["data"])))
    return out


def test_the_stream_sends_a_snapshot_then_new_events_with_their_ids_then_the_end(client: TestClient) -> None:
    with client.stream("GET", f"/api/executions/{ARN}/stream", headers=_auth()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = _messages(response.read().decode())
    first_id, kind, first = messages[0]
    assert kind == "history" and first["snapshot"] and first_id == "3"
    assert [e["id"] for e in first["events"]] == [1, 2, 3]
    assert first["progress"]["states"]["Configure"]["status"] == "succeeded"
    ids = [int(m[0]) for m in messages if m[1] == "history"]
    assert ids == sorted(ids) and ids[-1] == 8
    last = [m for m in messages if m[1] == "history"][-1][2]["progress"]
    assert last["status"] == "FAILED"
    assert last["failed_state"] == "Deploy"
    assert last["states"]["Deploy"]["status"] == "failed"
    assert last["states"]["PipelineFailed"]["status"] == "failed"
    assert messages[-1][1] == "end" and messages[-1][2] == {"status": "FAILED"}


def test_a_reconnect_gets_only_what_it_missed(client: TestClient, sfn: FakeStepFunctions) -> None:
    sfn.visible = len(HISTORY)
    headers = {**_auth(), "Last-Event-ID": "6"}
    with client.stream("GET", f"/api/executions/{ARN}/stream", headers=headers) as response:
        messages = _messages(response.read().decode())
    assert [e["id"] for e in messages[0][2]["events"]] == [7, 8]
    assert set(messages[0][2]["progress"]["states"]) == {"Configure", "Deploy", "PipelineFailed"}
    bad = client.get(f"/api/executions/{ARN}/stream", headers={**_auth(), "Last-Event-ID": "x"})
    assert bad.status_code == 400


@pytest.mark.parametrize("topic", ["edge/+/inference/result", "#", "edge/#", "$aws/things/t/jobs/+/update"])
def test_topic_filters_that_mqtt_allows(topic: str) -> None:
    assert check_topic_filter(topic) == topic


@pytest.mark.parametrize("topic", ["", "edge/#/x", "edge/a+/b", "edge/x#"])
def test_topic_filters_that_mqtt_refuses(topic: str) -> None:
    with pytest.raises(ConsoleError):
        check_topic_filter(topic)


def test_publishing_needs_a_topic_name_without_wildcards() -> None:
    assert check_topic("edge/t/inference/request")
    with pytest.raises(ConsoleError):
        check_topic("edge/+/inference/request")


def test_verification_messages_are_marked_with_their_request_id() -> None:
    verify = Message.parse(1, "edge/t/inference/result", b'{"id": "verify-t-run-3", "ok": true}')
    assert verify.verification and verify.request_id == "verify-t-run-3"
    mine = Message.parse(2, "edge/t/inference/result", b'{"id": "console-1"}')
    assert not mine.verification and mine.request_id == "console-1"
    text = Message.parse(3, "x", b"\xffnot json")
    assert text.json is None and text.request_id is None and not text.verification


def test_a_token_from_the_environment_must_be_long_and_url_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_edge.console.auth import TOKEN_ENV, new_token

    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(ValueError):
        new_token()
    monkeypatch.setenv(TOKEN_ENV, "x" * 15 + ";")
    with pytest.raises(ValueError):
        new_token()
    monkeypatch.setenv(TOKEN_ENV, "a-long-url-safe.token_~1")
    assert new_token() == "a-long-url-safe.token_~1"
    monkeypatch.delenv(TOKEN_ENV)
    assert len(new_token()) >= 43 and new_token() != new_token()
