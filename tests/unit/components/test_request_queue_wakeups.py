"""The inference worker is woken only when there is work for it, not after every request."""

from __future__ import annotations

import threading

from inference_component.service import InferenceService, Settings

from .fakes import FakeMessaging
from .test_inference_service import CONFIG, THING, StubEngine, _results


class CountingCondition(threading.Condition):
    """A Condition that counts notify_all calls."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify_all(self) -> None:
        self.notified += 1
        super().notify_all()


def test_requests_answered_inline_wake_no_thread() -> None:
    messaging = FakeMessaging({**CONFIG, "TelemetryIntervalSeconds": 60})
    service = InferenceService(
        StubEngine(), messaging, Settings.from_config(messaging.configuration(), THING)
    )
    service._cond = CountingCondition()
    service.start()
    try:
        for i in range(5):
            messaging.inject_iot(
                f"edge/{THING}/inference/request", b'{"id": "r%d", "instances": [[1, 2]]}' % i
            )
            _results(messaging, "iot", count=i + 1)
        # each was answered on the caller's thread and acknowledged at once: nobody waited
        assert service._cond.notified == 0
    finally:
        service.stop()
