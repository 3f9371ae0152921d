"""The local pub/sub consumer component (deployed by :mod:`.local_ipc`): asks the inference
component over Greengrass IPC, as the reference Greengrass sample's consumer does.

It runs on the device like any component: the unmodified ``GreengrassCoreIPCClientV2`` (socket and
token from the nucleus's environment), its configuration read with GetConfiguration, its requests
sent with PublishToTopic (binary messages) on ``RequestTopic`` and the results received with
SubscribeToTopic on ``ResultTopic``, each matched by its ``id``. Open loop at ``RatePerSecond``:
requests go out on schedule whether or not answers came back. After ``WarmupSeconds`` it writes
``<OutputDir>/started`` and measures ``DurationSeconds``; after a grace period for stragglers it
writes ``<OutputDir>/result.json`` (sent, answered, lost, errors by code, p50/p90/p99/max in ms)
and exits. Standard library and awsiotsdk only: it is zipped alone as the component's artifact.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

GRACE_S = 3.0
_KEPT: set[int] = set()


def _keep_thread_state() -> None:
    """One thread state for awscrt's callback thread, as the inference component keeps (its messaging.py)."""
    if threading.get_ident() not in _KEPT:
        ctypes.pythonapi.PyGILState_Ensure()
        _KEPT.add(threading.get_ident())


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest rank, ``ceil(q * n / 100)``, as ``edge_runtime.inference.stats.percentile`` (not on the device)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1], 3)


class Consumer:
    """Sends requests on a schedule and times each answer by its id."""

    def __init__(self, client: Any, config: dict[str, Any]) -> None:
        self.client = client
        self.request_topic = str(config["RequestTopic"])
        self.rows = [json.dumps(row, separators=(",", ":")) for row in config["Rows"]]
        self.tick_s = float(config.get("SendIntervalMs", 1.0)) / 1000.0
        self.sent: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        #: per answered id, the ms its request waited in the inference component's queue (its
        #: ``queued_ms``): tells the component's share of a slow answer from the sockets' and ours
        self.queued: dict[str, float] = {}
        self.publish_failures = 0
        self.lock = threading.Lock()
        self.answered = threading.Event()
        client.subscribe_to_topic(
            topic=str(config["ResultTopic"]),
            on_stream_event=self._on_result,
            on_stream_error=lambda _e: False,
        )

    def _on_result(self, event: Any) -> None:
        now = time.perf_counter()
        _keep_thread_state()
        message = event.binary_message.message if event.binary_message else b""
        body = json.loads(message)
        for result in body.get("results", [body]):
            rid = result.get("id")
            with self.lock:
                start = self.sent.get(rid)
                if start is not None and rid not in self.latencies:
                    self.latencies[rid] = (now - start) * 1000.0
                    self.queued[rid] = result.get("queued_ms", 0.0)
                    if not result.get("ok"):
                        self.errors[rid] = str(result.get("error", {}).get("code"))
        self.answered.set()

    def send(self, rid: str, row: str) -> None:
        payload = b'{"id":"%s","instances":[%s]}' % (rid.encode(), row.encode())
        with self.lock:
            self.sent[rid] = time.perf_counter()
        future = self.client.publish_to_topic_async(
            topic=self.request_topic,
            publish_message=PublishMessage(binary_message=BinaryMessage(message=payload)),
        )
        future.add_done_callback(self._published)

    def _published(self, future: Any) -> None:
        if future.exception() is not None:
            with self.lock:
                self.publish_failures += 1

    def wait_until_serving(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        i = 0
        while time.monotonic() < deadline:
            rid = f"probe-{i}"
            self.send(rid, self.rows[0])
            self.answered.wait(0.5)
            self.answered.clear()
            if rid in self.latencies:
                return
            i += 1
        raise SystemExit("the inference component never answered over local pub/sub")

    def fire(self, tag: str, rate: float, seconds: float) -> list[str]:
        """Open loop: every ``SendIntervalMs`` (1 ms: two requests a tick at 2,000/s), send what is due.

        A shorter tick wakes this process more often than it sends: at 0.5 ms the extra wake-ups
        (and GIL hand-offs with the result thread) cost more than they saved in waiting.
        """
        ids: list[str] = []
        count = int(rate * seconds)
        start = time.perf_counter()
        while len(ids) < count:
            due = min(count, int((time.perf_counter() - start) * rate) + 1)
            while len(ids) < due:
                rid = f"{tag}-{len(ids)}"
                self.send(rid, self.rows[len(ids) % len(self.rows)])
                ids.append(rid)
            time.sleep(self.tick_s)
        return ids

    def summary(self, ids: list[str], elapsed: float) -> dict[str, Any]:
        with self.lock:
            got = [self.latencies[i] for i in ids if i in self.latencies]
            queued = [self.queued[i] for i in ids if i in self.queued]
            codes: dict[str, int] = {}
            for i in ids:
                if i in self.errors:
                    codes[self.errors[i]] = codes.get(self.errors[i], 0) + 1
        return {
            "sent": len(ids),
            "answered": len(got),
            "lost": len(ids) - len(got),
            "errors": sum(codes.values()),
            "error_codes": codes,
            "publish_failures": self.publish_failures,
            "send_rate_per_s": round(len(ids) / elapsed, 1),
            "p50_ms": _percentile(got, 50),
            "p90_ms": _percentile(got, 90),
            "p99_ms": _percentile(got, 99),
            "max_ms": round(max(got), 3) if got else None,
            "component_queued_p50_ms": _percentile(queued, 50),
            "component_queued_p99_ms": _percentile(queued, 99),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

    client = GreengrassCoreIPCClientV2(
        executor=None
    )  # results handled on the IPC thread, as the inference component does
    config = client.get_configuration(key_path=[]).value or {}
    out = Path(str(config["OutputDir"]))
    consumer = Consumer(client, config)
    consumer.wait_until_serving()
    # the start-up heap (awsiotsdk, awscrt, json) out of the collector's reach, as the inference
    # component does: its full collections (up to 43 ms, --gc-probe) were timed as answer latency
    gc.freeze()
    rate = float(config["RatePerSecond"])
    consumer.fire("warm", rate, float(config["WarmupSeconds"]))
    (out / "started").write_text(str(time.time()))
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    ids = consumer.fire("req", rate, float(config["DurationSeconds"]))
    elapsed = time.perf_counter() - started
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(i not in consumer.latencies for i in ids[-50:]):
        time.sleep(0.05)
    time.sleep(0.2)
    result = {
        "rate_per_s": rate,
        "duration_s": float(config["DurationSeconds"]),
        **consumer.summary(ids, elapsed),
        "cpu_s": round(_cpu_seconds() - cpu_before, 4),  # this process's own (getrusage), as psutil reads it
    }
    (out / "result.json.tmp").write_text(json.dumps(result))
    (out / "result.json.tmp").rename(out / "result.json")
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
