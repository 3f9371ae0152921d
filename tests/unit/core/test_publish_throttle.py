"""The core's IoT Core flow control: what the device publishes, held to IoT Core's limits.

The device's PUBACKs for what it receives are not publishes and are not held back (awscrt's own
``AWS_IOT_CORE_DEFAULTS`` held them: a device receiving 300 requests/s could hardly answer);
that part is measured against the real broker in tests/integration/device/test_overload.py.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from edge_runtime.core.mqtt import IotCoreLimitExceeded, PublishThrottle, SpoolFull


class FakeSend:
    """Records when each publish reached the connection; acknowledges at once unless held."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, float]] = []
        self.hold = False
        self.pending: list[Future] = []
        self.lock = threading.Lock()

    def __call__(self, topic: str, payload: bytes, qos: int) -> Future:
        future: Future = Future()
        with self.lock:
            self.sent.append((topic, payload, time.monotonic()))
            if self.hold:
                self.pending.append(future)
                return future
        future.set_result("puback")
        return future


def test_publishes_go_out_in_order_at_the_rate_after_a_seconds_burst() -> None:
    send = FakeSend()
    throttle = PublishThrottle(send, publish_per_s=50)
    try:
        started = time.monotonic()
        futures = [throttle.submit(f"t/{i}", b"x", 1) for i in range(60)]
        for future in futures:
            assert future.result(timeout=5) == "puback"
        times = [t - started for _, _, t in send.sent]
        assert [topic for topic, _, _ in send.sent] == [f"t/{i}" for i in range(60)]
        assert times[49] < 0.1  # a second's worth at once
        assert 0.15 < times[59] < 0.5  # then 50/s: ten more take 0.2 s
    finally:
        throttle.stop()


def test_bytes_are_limited_too() -> None:
    send = FakeSend()
    throttle = PublishThrottle(send, publish_per_s=1000, bytes_per_s=10_000)
    try:
        started = time.monotonic()
        futures = [throttle.submit("t", b"x" * 1000, 1) for _ in range(15)]
        for future in futures:
            future.result(timeout=5)
        assert 0.35 < send.sent[-1][2] - started < 1.0  # 15 kB at 10 kB/s after a 10 kB burst
    finally:
        throttle.stop()


def test_a_full_spool_fails_the_publish_at_once_instead_of_queueing_it() -> None:
    send = FakeSend()
    throttle = PublishThrottle(send, publish_per_s=1, spool_bytes=250)
    try:
        first = throttle.submit("t", b"x" * 100, 1)  # the burst token: sent
        first.result(timeout=5)
        waiting = [throttle.submit("t", b"x" * 100, 1) for _ in range(2)]  # 200 bytes wait
        refused = throttle.submit("t", b"x" * 100, 1)
        with pytest.raises(SpoolFull, match="publishes/s"):
            refused.result(timeout=1)
        assert throttle.queued == 2 and not any(f.done() for f in waiting)
    finally:
        throttle.stop()
    for future in waiting:  # stopping fails what still waits: nothing is left hanging
        with pytest.raises(ConnectionError):
            future.result(timeout=1)


def test_the_result_is_the_brokers_acknowledgement() -> None:
    send = FakeSend()
    send.hold = True
    throttle = PublishThrottle(send, publish_per_s=100)
    try:
        future = throttle.submit("t", b"x", 1)
        deadline = time.monotonic() + 5
        while not send.pending and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not future.done()
        send.pending[0].set_exception(PermissionError("refused"))
        with pytest.raises(PermissionError):
            future.result(timeout=1)
    finally:
        throttle.stop()


@pytest.mark.parametrize(
    ("topic", "size", "message"),
    [
        ("edge/t/inference/result", 128 * 1024 + 1, "over IoT Core's message limit"),
        ("a/" * 8 + "b", 10, "more than 7 '/'"),
        ("t" * 257, 10, "longer than 256 bytes"),
    ],
)
def test_what_iot_core_would_refuse_fails_at_once(topic: str, size: int, message: str) -> None:
    send = FakeSend()
    throttle = PublishThrottle(send)
    try:
        with pytest.raises(IotCoreLimitExceeded, match=message):
            throttle.submit(topic, b"x" * size, 1).result(timeout=1)
        assert send.sent == []
        throttle.submit("$aws/rules/my_rule/a/b/c/d/e/f/g", b"x" * (128 * 1024), 1).result(timeout=1)
    finally:
        throttle.stop()
