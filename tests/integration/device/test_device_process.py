"""``mlops-edge device run`` as a real process: connects, reports health, stops cleanly by signal."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.devices import DeviceFleet
from tests.integration.device.harness import Operator

pytestmark = pytest.mark.integration


def test_device_process_reports_health_and_stops_on_sigterm(
    simulated_devices: DeviceFleet, local_cloud
) -> None:
    operator = Operator(local_cloud)
    try:
        operator.watch("$aws/things/+/greengrassv2/health/json")
        (device,) = simulated_devices.start(1, heartbeat_s=0.5)
        topic = f"$aws/things/{device.thing_name}/greengrassv2/health/json"
        found = operator.wait(lambda t, p: t == topic, timeout=15)
        assert found is not None, device.log_path.read_text()
        doc = json.loads(found[1])
        assert doc["thing"] == device.thing_name and doc["overallDeviceStatus"] == "HEALTHY"
        assert doc["components"] == [] and doc["messageType"] == "COMPLETE"
    finally:
        operator.close()
    assert simulated_devices.stop(device) == 0
    assert not (device.root / "core.pid").exists()
