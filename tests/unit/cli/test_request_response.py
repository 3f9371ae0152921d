"""``pipeline.mqtt.request_response`` and ``request_response_many`` against in-memory clients."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest

from pipeline.mqtt import Exchange, request_response, request_response_many


class _FastDevice:
    """Answers each request ``answer_after`` s after it is published, from another thread.

    ``publish`` itself takes ``publish_s`` (paho waits for the PUBACK), so a fast device answers
    request i before request i+1 is even sent; ids in ``late`` are answered only after 0.1 s.
    """

    def __init__(
        self,
        *,
        answer_after: float,
        publish_s: float,
        drop: frozenset[str] = frozenset(),
        late: frozenset[str] = frozenset(),
    ) -> None:
        self.handler: Any = None
        self.answer_after = answer_after
        self.publish_s = publish_s
        self.drop = drop
        self.late = late

    def subscribe(self, topic: str, handler: Any) -> None:
        self.handler = handler

    def publish(self, topic: str, payload: Any, **options: Any) -> None:
        rid = payload["id"]
        if rid not in self.drop:
            body = json.dumps({"id": rid, "ok": True}).encode()
            delay = 0.1 if rid in self.late else self.answer_after
            threading.Timer(delay, self.handler, args=("res", body)).start()
        time.sleep(self.publish_s)


def test_answers_arriving_before_the_next_request_is_sent_do_not_end_the_batch_early() -> None:
    requests = [{"id": f"r{i}"} for i in range(5)]
    device = _FastDevice(answer_after=0.01, publish_s=0.03, late=frozenset({"r4"}))
    answers = request_response(
        device, request_topic="req", result_topic="res", requests=requests, timeout_s=5
    )
    assert sorted(answers) == sorted(r["id"] for r in requests)


def test_a_missing_answer_is_absent_after_the_timeout() -> None:
    device = _FastDevice(answer_after=0.0, publish_s=0.0, drop=frozenset({"r1"}))
    answers = request_response(
        device, request_topic="req", result_topic="res", requests=[{"id": "r0"}, {"id": "r1"}], timeout_s=0.2
    )
    assert set(answers) == {"r0"}


class _Fleet:
    """Devices ``edge/<thing>/…`` behind one client: each answers on its own result topic, through
    whichever subscriptions match it (as ``MqttClient`` dispatches), unless it is silent."""

    def __init__(self, *, silent: frozenset[str] = frozenset(), impostor: str | None = None) -> None:
        self.handlers: list[tuple[str, Any]] = []
        self.published: list[tuple[str, str]] = []
        self.silent, self.impostor = silent, impostor

    def subscribe(self, topic: str, handler: Any) -> None:
        self.handlers.append((topic, handler))

    def publish(self, topic: str, payload: Any, **options: Any) -> None:
        assert options.get("wait") is False, "requests are pipelined, not sent one PUBACK at a time"
        thing = topic.split("/")[1]
        self.published.append((thing, payload["id"]))
        if thing in self.silent:
            return
        answer_on = f"edge/{self.impostor or thing}/inference/result"
        body = json.dumps({"id": payload["id"], "ok": True}).encode()
        for pattern, handler in self.handlers:
            if paho.topic_matches_sub(pattern, answer_on):
                handler(answer_on, body)


def _exchanges(things: list[str], n: int) -> list[Exchange]:
    return [
        Exchange(
            f"edge/{t}/inference/request",
            f"edge/{t}/inference/result",
            [{"id": f"{t}-{i}"} for i in range(n)],
        )
        for t in things
    ]


def test_many_devices_are_asked_round_robin_through_one_wildcard_subscription() -> None:
    fleet = _Fleet(silent=frozenset({"b"}))
    answers = request_response_many(
        fleet, _exchanges(["a", "b", "c"], 2), subscriptions=["edge/+/inference/result"], timeout_s=0.2
    )
    assert [pattern for pattern, _ in fleet.handlers] == ["edge/+/inference/result"]
    assert fleet.published == [
        ("a", "a-0"),
        ("b", "b-0"),
        ("c", "c-0"),
        ("a", "a-1"),
        ("b", "b-1"),
        ("c", "c-1"),
    ]
    assert sorted(answers) == ["a-0", "a-1", "c-0", "c-1"]


def test_an_answer_on_another_devices_topic_does_not_count() -> None:
    fleet = _Fleet(impostor="c")
    answers = request_response_many(
        fleet, _exchanges(["a"], 1), subscriptions=["edge/+/inference/result"], timeout_s=0.1
    )
    assert answers == {}


def test_publishing_is_paced_and_the_wait_ends_at_the_deadline() -> None:
    fleet = _Fleet(silent=frozenset({"b"}))
    started = time.monotonic()
    answers = request_response_many(fleet, _exchanges(["a", "b"], 3), timeout_s=0.05, max_publish_per_s=50)
    assert time.monotonic() - started >= 0.1 - 1e-3  # 6 requests, 1/50 s apart
    assert len(answers) == 3
    started = time.monotonic()
    request_response_many(fleet, _exchanges(["b"], 1), timeout_s=30, deadline=time.monotonic() + 0.1)
    assert time.monotonic() - started < 5


def test_request_ids_must_be_unique() -> None:
    exchanges = [Exchange("edge/a/inference/request", "edge/a/inference/result", [{"id": "x"}, {"id": "x"}])]
    with pytest.raises(ValueError, match="used twice"):
        request_response_many(_Fleet(), exchanges)
