"""The broker refuses what an IoT policy on ``${iot:Connection.Thing.ThingName}`` would refuse.

Real mosquitto, real paho clients with real certificates (issue 13, item 1):
- CONNECT with a client id that is not the certificate's identity (another thing's, the control
  plane's, the pipeline's) is refused in CONNACK, and the client that owns the id keeps its session;
- SUBSCRIBE to another thing's topics, or to ``#``, gets a failure code in SUBACK (MQTT 5: 0x87,
  MQTT 3.1.1: 0x80), where mosquitto's ACL file alone grants it and then starves the subscriber.
"""

from __future__ import annotations

import ast
import json
import queue
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from local_cloud.mqtt.broker import CONTROL_PLANE_IDENTITY, PIPELINE_IDENTITY, TOOL_CLIENT_PREFIX

pytestmark = pytest.mark.integration

NOT_AUTHORIZED_V5 = 0x87
# MQTT 3.1.1's CONNACK return code 5 (not authorized); paho reports it as MQTT 5's 0x87
CONNACK_NOT_AUTHORIZED_V311 = 0x87
SUBACK_FAILURE_V311 = 0x80


class Client:
    """A paho client that records CONNACK, SUBACK, DISCONNECT and messages, for either protocol."""

    def __init__(
        self, host: str, port: int, ca: Path, cert: Path, key: Path, client_id: str, v5: bool = True
    ):
        self.v5 = v5
        self.connack: queue.Queue[int] = queue.Queue()
        self.suback: queue.Queue[list[int]] = queue.Queue()
        self.disconnects: list[int] = []
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        self.client.tls_set(
            ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT
        )
        self.client.reconnect_delay_set(60, 120)  # a refused client must not come back in a test
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(_code(rc))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.suback.put([_code(r) for r in rcs])
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(_code(rc))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.connect(host, port)
        self.client.loop_start()

    def connect_code(self, timeout: float = 5) -> int:
        return self.connack.get(timeout=timeout)

    def subscribe(self, topic_filter: str, timeout: float = 5) -> int:
        self.client.subscribe(topic_filter, qos=1)
        return self.suback.get(timeout=timeout)[0]

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _code(rc: Any) -> int:
    """paho gives ReasonCode objects for MQTT 5, and for 3.1.1 too (with the 3.1.1 value)."""
    return int(getattr(rc, "value", rc))


@pytest.fixture
def connect(local_cloud):  # type: ignore[no-untyped-def]
    clients: list[Client] = []

    def _connect(ident: Any, client_id: str, *, v5: bool = True) -> Client:
        mqtt_endpoint = local_cloud.mqtt
        client = Client(
            mqtt_endpoint.host,
            mqtt_endpoint.port,
            ident.ca_path,
            ident.cert_path,
            ident.key_path,
            client_id,
            v5,
        )
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()


def _connected(client: Client) -> bool:
    return client.connect_code() == 0


def test_a_device_cannot_connect_as_another_thing(connect, provision_device, local_cloud) -> None:  # type: ignore[no-untyped-def]
    victim = provision_device(thing_group="broker-identity")
    attacker = provision_device(thing_group="broker-identity")
    owner = connect(victim, victim.thing_name)
    assert _connected(owner)
    owner_topic = f"edge/{victim.thing_name}/inference/request"
    assert owner.subscribe(owner_topic) == 1

    takeover = connect(attacker, victim.thing_name)
    assert takeover.connect_code() == NOT_AUTHORIZED_V5
    takeover_v311 = connect(attacker, victim.thing_name, v5=False)
    assert takeover_v311.connect_code() == CONNACK_NOT_AUTHORIZED_V311

    # the owner was not pushed off: still connected, still subscribed, still receiving
    assert owner.disconnects == []
    sender = connect(local_cloud.pipeline_identity, f"{TOOL_CLIENT_PREFIX}{uuid.uuid4().hex[:8]}")
    assert _connected(sender)
    sender.publish(owner_topic, {"id": "still-mine"})
    assert owner.messages.get(timeout=5) == (owner_topic, {"id": "still-mine"})


@pytest.mark.parametrize(
    "client_id",
    [
        CONTROL_PLANE_IDENTITY,
        f"{CONTROL_PLANE_IDENTITY}-rules",
        PIPELINE_IDENTITY,
        f"{TOOL_CLIENT_PREFIX}x",
        "",
    ],
    ids=["control-plane", "rules-engine", "pipeline", "tool-prefix", "empty (broker-assigned)"],
)
def test_a_device_cannot_take_a_privileged_client_id(connect, provision_device, client_id: str) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="broker-identity")
    assert connect(device, client_id).connect_code() == NOT_AUTHORIZED_V5


def test_the_control_plane_keeps_serving_after_a_takeover_attempt(connect, provision_device) -> None:  # type: ignore[no-untyped-def]
    """Before the fix the control plane was pushed off and a device's job update was lost."""
    device = provision_device(thing_group="broker-identity")
    assert connect(device, CONTROL_PLANE_IDENTITY).connect_code() == NOT_AUTHORIZED_V5
    own = connect(device, device.thing_name)
    assert _connected(own)
    assert own.subscribe(f"$aws/things/{device.thing_name}/jobs/$next/get/+") == 1
    own.publish(f"$aws/things/{device.thing_name}/jobs/$next/get", {"clientToken": "after-attempt"})
    topic, answer = own.messages.get(timeout=10)
    assert topic.endswith("/jobs/$next/get/accepted"), (topic, answer)
    assert answer["clientToken"] == "after-attempt"


def test_the_pipeline_identity_is_bound_too(connect, provision_device, local_cloud) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="broker-identity")
    pipeline = local_cloud.pipeline_identity
    assert connect(pipeline, device.thing_name).connect_code() == NOT_AUTHORIZED_V5
    assert connect(pipeline, CONTROL_PLANE_IDENTITY).connect_code() == NOT_AUTHORIZED_V5
    assert connect(pipeline, f"someone-else-{uuid.uuid4().hex[:6]}").connect_code() == NOT_AUTHORIZED_V5
    assert _connected(connect(pipeline, f"{TOOL_CLIENT_PREFIX}{uuid.uuid4().hex[:8]}"))
    assert _connected(connect(pipeline, PIPELINE_IDENTITY))


def test_subscriptions_outside_the_policy_are_refused_in_suback(
    connect, provision_device, local_cloud
) -> None:  # type: ignore[no-untyped-def]
    me = provision_device(thing_group="broker-identity")
    other = provision_device(thing_group="broker-identity")
    for v5, refused in ((True, NOT_AUTHORIZED_V5), (False, SUBACK_FAILURE_V311)):
        client = connect(me, me.thing_name, v5=v5)
        assert _connected(client)
        assert client.subscribe(f"edge/{other.thing_name}/inference/result") == refused
        assert client.subscribe(f"edge/{other.thing_name}/#") == refused
        assert client.subscribe(f"$aws/things/{other.thing_name}/jobs/#") == refused
        assert client.subscribe("#") == refused
        assert client.subscribe("edge/+/inference/result") == refused
        assert client.subscribe(f"$share/g/edge/{other.thing_name}/#") == refused
        assert client.subscribe(f"edge/{me.thing_name}") == refused  # the policy is edge/<thing>/*
        assert client.subscribe(f"edge/{me.thing_name}/#") == 1
        assert client.subscribe(f"$aws/things/{me.thing_name}/jobs/notify-next") == 1
        client.close()
    # a thing whose name is a prefix of another's reaches only its own
    prefix = provision_device(f"{me.thing_name[:-1]}", thing_group="broker-identity")
    client = connect(prefix, prefix.thing_name)
    assert _connected(client)
    assert client.subscribe(f"edge/{me.thing_name}/#") == NOT_AUTHORIZED_V5
    # privileged identities subscribe anywhere
    tool = connect(local_cloud.pipeline_identity, f"{TOOL_CLIENT_PREFIX}{uuid.uuid4().hex[:8]}")
    assert _connected(tool)
    assert tool.subscribe("#") == 1
    assert tool.subscribe("$aws/things/+/jobs/#") == 1


def test_a_device_reconnecting_with_its_own_id_still_replaces_its_old_session(
    connect, provision_device
) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="broker-identity")
    first = connect(device, device.thing_name)
    assert _connected(first)
    second = connect(device, device.thing_name)
    assert _connected(second)
    pause = threading.Event()
    for _ in range(50):
        if first.disconnects:
            break
        pause.wait(0.1)
    assert first.disconnects, "the same identity reconnecting takes its session over, as on AWS"


def test_the_pipelines_default_client_id_is_allowed_and_is_the_one_aws_allows(local_cloud) -> None:  # type: ignore[no-untyped-def]
    from pipeline.mqtt import MqttClient, MqttSettings

    # infra/verifier.py's VERIFIER_CLIENT_PREFIX, read without importing the CDK
    verifier = ast.parse((Path(__file__).parents[3] / "infra" / "verifier.py").read_text())
    prefixes = [
        node.value.value
        for node in verifier.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "VERIFIER_CLIENT_PREFIX" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert prefixes == [TOOL_CLIENT_PREFIX]
    ident, endpoint = local_cloud.pipeline_identity, local_cloud.mqtt
    settings = MqttSettings(
        endpoint.host, endpoint.port, str(ident.ca_path), str(ident.cert_path), str(ident.key_path)
    )
    with MqttClient(settings):  # no client id given: pipeline.mqtt's default must be accepted
        pass
