"""The MQTT load client's side of a round trip: requests sent by id, each answer timed.

Used by every MQTT mode of ``bench/device_roundtrip.py`` and by ``bench/reliability.py`` (as
``roundtrip._Requester``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any


class _Requester:
    """Sends requests to one device and times each answer by its id (one subscriber, one lock)."""

    def __init__(self, client: Any, thing: str, rows: list[list[float]]) -> None:
        self.client, self.thing, self.rows = client, thing, rows
        self.sent: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.errors: list[dict] = []
        self.unmatched: list[dict] = []  # answers without a known id (malformed requests)
        self.duplicates = 0
        self.lock = threading.Lock()
        self.answered = threading.Condition(self.lock)
        client.subscribe(f"edge/{thing}/inference/result", self._on_result)

    def _on_result(self, _topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        message = json.loads(payload)
        # one result, or several overload rejections together ({"results": [...]})
        for body in message.get("results", [message]):
            self._record(body, now)

    def _record(self, body: dict, now: float) -> None:
        with self.lock:
            rid = body.get("id")
            start = self.sent.get(rid) if isinstance(rid, str) else None
            if start is None:
                self.unmatched.append(body)
            elif rid in self.latencies:
                self.duplicates += 1
            else:
                self.latencies[rid] = (now - start) * 1000.0
                if not body.get("ok"):
                    self.errors.append(body)
            self.answered.notify_all()

    def send(self, rid: str, row: list[float]) -> None:
        self.send_raw(rid, json.dumps({"id": rid, "instances": [row]}).encode())

    def send_raw(self, rid: str | None, body: bytes) -> None:
        """Publish ``body`` as it is; ``rid`` is the id its answer will carry (None: none)."""
        if rid is not None:
            with self.lock:
                self.sent[rid] = time.perf_counter()
        self.client.publish(f"edge/{self.thing}/inference/request", body, 1)  # no wait for PUBACK

    def wait_until_serving(self) -> None:
        probe = f"probe-{uuid.uuid4().hex}"
        while probe not in self.latencies:
            self.send(probe, self.rows[0])
            time.sleep(0.5)

    def fire(self, count: int, tag: str, rate: float) -> list[str]:
        """Open loop at ``rate``: requests go out on schedule whether or not answers came back."""
        ids, period, next_t = [], 1.0 / rate, time.perf_counter()
        for i in range(count):
            now = time.perf_counter()
            if next_t > now:
                time.sleep(next_t - now)
            rid = f"{tag}-{i}"
            self.send(rid, self.rows[i % len(self.rows)])
            ids.append(rid)
            next_t += period
        return ids

    def closed_loop(self, count: int) -> list[float]:
        """One request at a time: the round trip without queueing behind earlier requests."""
        out = []
        for i in range(count):
            rid = f"seq-{i}"
            self.send(rid, self.rows[i % len(self.rows)])
            with self.answered:  # block, do not poll: a polling thread delays the others' GIL hand-offs
                self.answered.wait_for(lambda rid=rid: rid in self.latencies, timeout=5)
            if rid in self.latencies:
                out.append(self.latencies[rid])
        return out

    def total_answered(self) -> int:
        with self.lock:
            return len(self.latencies)

    def answered_of(self, ids: list[str]) -> list[float]:
        with self.lock:
            return [self.latencies[i] for i in ids if i in self.latencies]

    def outcomes(self, ids: list[str]) -> dict[str, Any]:
        """Of ``ids``: answered with a result, rejected (by code), other errors, unanswered."""
        with self.lock:
            errors = {e["id"]: e["error"]["code"] for e in self.errors if e.get("id") in self.sent}
            ok = [self.latencies[i] for i in ids if i in self.latencies and i not in errors]
            rejected = [i for i in ids if errors.get(i) in ("THROTTLED", "BUSY")]
            codes: dict[str, int] = {}
            for i in ids:
                if i in errors:
                    codes[errors[i]] = codes.get(errors[i], 0) + 1
            return {
                "sent": len(ids),
                "ok": len(ok),
                "rejected": len(rejected),
                "error_codes": codes,
                "unanswered": sum(1 for i in ids if i not in self.latencies),
                "ok_latencies_ms": ok,
                "rejected_latencies_ms": [self.latencies[i] for i in rejected],
            }
