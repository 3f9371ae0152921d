"""Fixed ports (issue 14, `local up`): the broker keeps the port it is given instead of taking a
fresh ephemeral one, and a taken port is refused before any process starts, naming the port."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_cloud import LocalCloud, LocalCloudError, PortInUse
from local_cloud.mqtt.broker import Broker, BrokerPortInUse
from local_cloud.ports import free_port, port_free, wait_for_port


def test_port_free_sees_a_listener_but_not_a_closed_socket(taken: int) -> None:
    assert not port_free(taken)
    closed = free_port()
    assert port_free(closed)


def test_broker_listens_on_the_fixed_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    broker = Broker(tmp_path, port=port)
    try:
        broker.start(timeout=20)
        assert broker.port == port and wait_for_port(port, 5)
        assert broker.process is not None and broker.process.poll() is None
    finally:
        broker.stop()
    assert broker.process is None and port_free(port)


def test_broker_refuses_a_taken_fixed_port_before_starting_mosquitto(tmp_path: Path, taken: int) -> None:
    broker = Broker(tmp_path, port=taken)
    with pytest.raises(BrokerPortInUse, match=f"MQTT port {taken} on 127.0.0.1 is already in use"):
        broker.launch()
    assert broker.process is None and not (tmp_path / "mosquitto.pid").exists()


def test_local_cloud_names_a_taken_mqtt_port_before_starting_the_endpoint(tmp_path: Path, taken: int) -> None:
    cloud = LocalCloud(tmp_path, port=free_port(), mqtt_port=taken)
    with pytest.raises(PortInUse) as raised:
        cloud.start()
    assert raised.value.mqtt and raised.value.port == taken and str(taken) in str(raised.value)
    assert cloud.process is None and not (tmp_path / "endpoint.log").exists()


@pytest.mark.parametrize(
    ("port", "mqtt_port", "says"),
    [(4610, 4610, "cannot share port 4610"), (0, 70000, "mqtt_port must be 0"), (-1, 0, "port must be 0")],
)
def test_local_cloud_rejects_impossible_ports(port: int, mqtt_port: int, says: str) -> None:
    with pytest.raises(LocalCloudError, match=says):
        LocalCloud(port=port, mqtt_port=mqtt_port)
