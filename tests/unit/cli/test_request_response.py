"""``pipeline.mqtt.request_response`` against an in-memory client (no broker)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from pipeline.mqtt import request_response


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

    def publish(self, topic: str, payload: Any) -> None:
        rid = payload["id"]
        if rid not in self.drop:
            body = json.dumps({"id": rid, "ok": True}).encode()
            delay = 0.1 if rid in self.late else self.answer_after
            threading.Timer(delay, self.handler, args=("result", body)).start()
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
