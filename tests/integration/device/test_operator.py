"""The device tests' cloud side (harness.Operator) on the real broker, without a core.

Why it has a test of its own: test_core_restart_restores_components failed in 2 of 5 runs of its
module, and the core was suspected (a per-topic subscriber memo was reverted for it). The core
was not at fault: ``Operator.infer`` published its resends while holding its condition, and a
publish waits for its PUBACK, which paho reads on the thread that runs ``on_message`` -- blocked
on that same condition by the next watched message (telemetry, monitoring, health: several a
second once the first test watched them). Each resend then waited out the 10 s PUBACK timeout,
that thread drained one message per resend, and the result sat behind the backlog until the
60 s ran out. Here a stand-in device answers only the third request (the first ones "arrive before it
subscribed", as after a restart) and sends bursts of telemetry until then, so ``infer`` must
resend while its network thread has watched messages to deliver.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pipeline.mqtt import MqttClient
from tests.integration.device.harness import Operator, pipeline_settings

pytestmark = pytest.mark.integration


def _device_client(local_cloud: Any) -> MqttClient:
    return MqttClient(pipeline_settings(local_cloud))


#: Telemetry a request is answered with until the device "has subscribed": enough that the
#: operator's network thread is still delivering it when the operator next publishes.
BURST = 200


def test_infer_resends_and_gets_its_result_while_watched_topics_stream(local_cloud: Any) -> None:
    thing = f"operator-{uuid.uuid4().hex[:6]}"
    operator = Operator(local_cloud)
    device = _device_client(local_cloud)
    requests: list[dict[str, Any]] = []

    def on_request(_topic: str, payload: bytes) -> None:
        request = json.loads(payload)
        requests.append(request)
        if len(requests) < 3:  # not answered yet: only telemetry, as from a component starting up
            for n in range(BURST):
                device.publish(f"edge/{thing}/telemetry", {"n": n}, wait=False)
            return
        device.publish(f"edge/{thing}/inference/result", {"id": request["id"], "ok": True}, wait=False)

    try:
        device.subscribe(f"edge/{thing}/inference/request", on_request)
        operator.watch(f"edge/{thing}/telemetry")
        answer = operator.infer(thing, {"id": "restart"}, timeout=8.0, resend_s=0.5)
        assert answer == {"id": "restart", "ok": True}
        assert len(requests) >= 3 and {r["id"] for r in requests} == {"restart"}
        telemetry = [p for t, p in operator.messages if t == f"edge/{thing}/telemetry"]
        assert len(telemetry) >= 2 * BURST  # the operator's thread did have messages to deliver
    finally:
        device.close()
        operator.close()
