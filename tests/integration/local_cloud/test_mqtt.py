"""The broker enforces per-device identities: own topics allowed, others' refused."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.local_cloud.mqtt_client import MqttTestClient

pytestmark = pytest.mark.integration

NOT_AUTHORIZED = 135
OK = (0, 16)  # success, or "no matching subscribers" (still accepted by the broker)


def _client(ident, client_id: str) -> MqttTestClient:  # type: ignore[no-untyped-def]
    return MqttTestClient(
        ident.mqtt_host, ident.mqtt_port, ident.ca_path, ident.cert_path, ident.key_path, client_id
    )


def test_device_publishes_own_topics_and_is_refused_others(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    me = provision_device(thing_group="mqtt-acl")
    other = provision_device(thing_group="mqtt-acl")
    iot = local_cloud.client("iot")
    assert iot.describe_thing(thingName=me.thing_name)["thingName"] == me.thing_name
    assert iot.list_thing_principals(thingName=me.thing_name)["principals"] == [me.certificate_arn]
    client = _client(me, me.thing_name)
    try:
        assert client.publish(f"edge/{me.thing_name}/telemetry", {"x": 1}) in OK
        assert client.publish(f"$aws/things/{me.thing_name}/jobs/$next/get", {}) in OK
        assert client.publish(f"edge/{other.thing_name}/telemetry", {"x": 1}) == NOT_AUTHORIZED
        assert client.publish(f"$aws/things/{other.thing_name}/jobs/$next/get", {}) == NOT_AUTHORIZED
        assert client.publish("edge/anything", {}) == NOT_AUTHORIZED
        # refused in SUBACK (tests/integration/local_cloud/test_broker_identity.py), never delivered
        assert client.subscribe(f"edge/{other.thing_name}/#") == NOT_AUTHORIZED
        assert client.subscribe(f"edge/{me.thing_name}/#") == 1
        ident = local_cloud.pipeline_identity
        mqtt = local_cloud.mqtt
        pipeline = MqttTestClient(
            mqtt.host, mqtt.port, ident.ca_path, ident.cert_path, ident.key_path, "mlops-edge-tool-acl"
        )
        try:
            assert pipeline.publish(f"edge/{other.thing_name}/secret", {"n": 1}) in OK
            assert pipeline.publish(f"edge/{me.thing_name}/mine", {"n": 2}) in OK
            topic, payload = client.messages.get(timeout=5)
            assert (topic, payload) == (f"edge/{me.thing_name}/mine", {"n": 2})
            assert client.messages.empty()
        finally:
            pipeline.close()
    finally:
        client.close()


def test_pipeline_identity_reaches_device_topics(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    dev = provision_device()
    ident = local_cloud.pipeline_identity
    mqtt = local_cloud.mqtt
    pipeline = MqttTestClient(
        mqtt.host,
        mqtt.port,
        ident.ca_path,
        ident.cert_path,
        ident.key_path,
        "mlops-edge-tool-" + uuid.uuid4().hex[:6],
    )
    device = _client(dev, dev.thing_name)
    try:
        assert device.subscribe(f"edge/{dev.thing_name}/inference/request") == 1
        assert pipeline.publish(f"edge/{dev.thing_name}/inference/request", {"id": "1"}) in OK
        assert device.wait_for("/inference/request") == {"id": "1"}
    finally:
        pipeline.close()
        device.close()
