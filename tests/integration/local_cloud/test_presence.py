"""The broker publishes AWS IoT lifecycle events (issue 12): real mosquitto, real paho clients.

A privileged subscriber sees ``$aws/events/presence/connected/<clientId>`` and
``.../disconnected/<clientId>`` with the payload AWS documents; a clean DISCONNECT, a dropped
connection and a session takeover each carry their reason; a refused CONNECT announces nothing;
a device may neither subscribe to the events nor forge one. Through the CDK app's presence rule
(the local rules engine's s3 action) the pipeline's reader names a taken-over session online
although its old connection's disconnect arrives last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import socket
import ssl
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from lambdas.core.presence import EVENT_KEY_TEMPLATE, last_event
from local_cloud.mqtt.broker import TOOL_CLIENT_PREFIX

pytestmark = pytest.mark.integration

PRESENCE = "$aws/events/presence"
NOT_AUTHORIZED = 0x87


class Client:
    """A paho MQTT 5 client recording CONNACK, SUBACK, PUBACK and messages."""

    def __init__(self, local_cloud: Any, ident: Any, client_id: str) -> None:
        self.acks: queue.Queue[tuple[str, int]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.tls_set(
            ca_certs=str(ident.ca_path),
            certfile=str(ident.cert_path),
            keyfile=str(ident.key_path),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.client.reconnect_delay_set(60, 120)  # no silent reconnection inside a test
        self.client.on_connect = lambda c, u, f, rc, p: self.acks.put(("connack", rc.value))
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.acks.put(("suback", rcs[0].value))
        self.client.on_publish = lambda c, u, mid, rc, p: self.acks.put(("puback", rc.value))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.connect(local_cloud.mqtt.host, local_cloud.mqtt.port)
        self.client.loop_start()

    def ack(self, kind: str) -> int:
        got, code = self.acks.get(timeout=10)
        assert got == kind, (got, code)
        return code

    def subscribe(self, topic_filter: str) -> int:
        self.client.subscribe(topic_filter, qos=1)
        return self.ack("suback")

    def event(self) -> tuple[str, dict[str, Any]]:
        return self.messages.get(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Lose the connection: the socket closes without an MQTT DISCONNECT."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def clients():  # type: ignore[no-untyped-def]
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def watcher(local_cloud, clients) -> Client:  # type: ignore[no-untyped-def]
    """The pipeline's identity, subscribed to every presence event."""
    client = Client(local_cloud, local_cloud.pipeline_identity, f"{TOOL_CLIENT_PREFIX}{uuid.uuid4().hex[:8]}")
    clients.append(client)
    assert client.ack("connack") == 0
    assert client.subscribe(f"{PRESENCE}/#") == 1
    return client


def _events_of(watcher: Client, client_id: str, count: int) -> list[tuple[str, dict[str, Any]]]:
    """The next ``count`` events about ``client_id`` (others, e.g. of parallel tests, skipped)."""
    found = []
    while len(found) < count:
        topic, payload = watcher.event()
        if topic.endswith(f"/{client_id}"):
            found.append((topic, payload))
    return found


def test_connect_and_clean_disconnect_are_announced_as_aws_documents(
    local_cloud, provision_device, watcher, clients
) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="presence")
    thing = device.thing_name
    client = Client(local_cloud, device, thing)
    assert client.ack("connack") == 0
    client.close()

    (up_topic, up), (down_topic, down) = _events_of(watcher, thing, 2)
    assert up_topic == f"{PRESENCE}/connected/{thing}"
    assert down_topic == f"{PRESENCE}/disconnected/{thing}"
    # AWS's certificate id: SHA-256 of the DER, the same in IoT's registry and in the events
    certificate_id = hashlib.sha256(ssl.PEM_cert_to_DER_cert(device.cert_path.read_text())).hexdigest()
    assert device.certificate_arn.endswith(f":cert/{certificate_id}")
    assert set(up) == {
        "clientId", "timestamp", "eventType", "sessionIdentifier", "principalIdentifier",
        "ipAddress", "versionNumber",
    }  # fmt: skip
    assert up["clientId"] == thing and up["eventType"] == "connected"
    assert up["ipAddress"] == "127.0.0.1"
    assert up["principalIdentifier"] == certificate_id
    assert len(up["sessionIdentifier"]) == 32
    assert isinstance(up["timestamp"], int) and up["timestamp"] > 1_600_000_000_000  # milliseconds
    assert down == {
        "clientId": thing,
        "timestamp": down["timestamp"],
        "eventType": "disconnected",
        "sessionIdentifier": up["sessionIdentifier"],
        "principalIdentifier": certificate_id,
        "clientInitiatedDisconnect": True,
        "disconnectReason": "CLIENT_INITIATED_DISCONNECT",
        "versionNumber": up["versionNumber"],
    }
    assert down["timestamp"] >= up["timestamp"]


def test_a_lost_connection_and_a_takeover_are_not_client_initiated(
    local_cloud, provision_device, watcher, clients
) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="presence")
    thing = device.thing_name
    first = Client(local_cloud, device, thing)
    clients.append(first)
    assert first.ack("connack") == 0
    [(_, first_up)] = _events_of(watcher, thing, 1)
    second = Client(local_cloud, device, thing)  # same identity again: takes the session over
    assert second.ack("connack") == 0
    events = {
        payload["sessionIdentifier"]: (topic, payload) for topic, payload in _events_of(watcher, thing, 2)
    }
    topic, taken = events.pop(first_up["sessionIdentifier"])
    assert topic.endswith(f"/disconnected/{thing}")
    assert (taken["disconnectReason"], taken["clientInitiatedDisconnect"]) == ("DUPLICATE_CLIENTID", False)
    [(_, second_up)] = events.values()
    assert second_up["eventType"] == "connected"
    assert second_up["versionNumber"] > first_up["versionNumber"]

    second.drop()
    [(topic, lost)] = _events_of(watcher, thing, 1)
    assert topic == f"{PRESENCE}/disconnected/{thing}"
    assert lost["sessionIdentifier"] == second_up["sessionIdentifier"]
    assert (lost["disconnectReason"], lost["clientInitiatedDisconnect"]) == ("CONNECTION_LOST", False)


def test_devices_can_neither_watch_nor_forge_presence_and_a_refused_connect_is_silent(
    local_cloud, provision_device, watcher, clients
) -> None:  # type: ignore[no-untyped-def]
    device = provision_device(thing_group="presence")
    other = provision_device(thing_group="presence")
    client = Client(local_cloud, device, device.thing_name)
    clients.append(client)
    assert client.ack("connack") == 0
    assert client.subscribe("$aws/events/#") == NOT_AUTHORIZED
    assert client.subscribe(f"{PRESENCE}/connected/{other.thing_name}") == NOT_AUTHORIZED
    client.client.publish(f"{PRESENCE}/disconnected/{other.thing_name}", b"{}", qos=1)
    assert client.ack("puback") == NOT_AUTHORIZED

    impostor = Client(local_cloud, other, device.thing_name)  # another thing's id: refused
    clients.append(impostor)
    assert impostor.ack("connack") == NOT_AUTHORIZED
    honest = Client(local_cloud, other, other.thing_name)
    clients.append(honest)
    assert honest.ack("connack") == 0
    # in order: our device's connect, then the honest one; the refused attempt in between is silent
    things = (f"/{device.thing_name}", f"/{other.thing_name}")
    seen: list[str] = []
    while f"{PRESENCE}/connected/{other.thing_name}" not in seen:
        topic, _ = watcher.event()
        if topic.endswith(things):
            seen.append(topic)
    assert seen == [f"{PRESENCE}/connected/{device.thing_name}", f"{PRESENCE}/connected/{other.thing_name}"]


def test_a_broker_reload_announces_nothing(local_cloud, provision_device, watcher, clients) -> None:  # type: ignore[no-untyped-def]
    """Provisioning a device makes mosquitto reload (SIGHUP) and check every connected client
    again: that must not look like a new connection, nor lose the connection's disconnect."""
    device = provision_device(thing_group="presence")
    client = Client(local_cloud, device, device.thing_name)
    assert client.ack("connack") == 0
    [(_, up)] = _events_of(watcher, device.thing_name, 1)
    newcomer = provision_device(thing_group="presence")  # the broker reloads its configuration
    late = Client(local_cloud, newcomer, newcomer.thing_name)  # connects after the reload
    clients.append(late)
    assert late.ack("connack") == 0
    client.close()
    seen = []
    while not seen or seen[-1][0] != f"{PRESENCE}/disconnected/{device.thing_name}":
        topic, payload = watcher.event()
        if topic.endswith(f"/{device.thing_name}"):
            seen.append((topic, payload["sessionIdentifier"]))
    assert seen == [(f"{PRESENCE}/disconnected/{device.thing_name}", up["sessionIdentifier"])]


def _presence_rule(local_cloud: Any, suffix: str) -> tuple[str, str]:
    """The CDK app's presence rule (infra/presence.py: its SQL and key) writing to a bucket of
    this test, as a role IoT may assume that may put objects under the presence prefix only."""
    from infra.presence import PRESENCE_PREFIX, PRESENCE_SQL

    bucket, rule = f"presence-order-{suffix}", f"presence_order_{suffix}"
    local_cloud.client("s3").create_bucket(Bucket=bucket)
    iam = local_cloud.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"presence-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    put = {
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/{PRESENCE_PREFIX}*",
    }
    iam.put_role_policy(
        RoleName=f"presence-{suffix}",
        PolicyName="presence",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [put]}),
    )
    key = PRESENCE_PREFIX + EVENT_KEY_TEMPLATE
    local_cloud.client("iot").create_topic_rule(
        ruleName=rule,
        topicRulePayload={
            "sql": PRESENCE_SQL,
            "awsIotSqlVersion": "2016-03-23",
            "actions": [{"s3": {"bucketName": bucket, "key": key, "roleArn": role["Arn"]}}],
        },
    )
    return bucket, rule


def _stored(s3: Any, bucket: str, thing: str, count: int) -> list[str]:
    """The names of ``thing``'s stored events once there are ``count`` (bounded wait)."""
    deadline = time.monotonic() + 15
    while True:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"state/presence/{thing}/").get("Contents", [])
        if len(listed) >= count or time.monotonic() > deadline:
            return [o["Key"].rsplit("/", 1)[-1] for o in listed]
        time.sleep(0.1)


def test_a_takeover_whose_old_disconnect_arrives_last_is_still_online_through_the_rule(
    local_cloud, provision_device, clients
) -> None:  # type: ignore[no-untyped-def]
    """The real path of issue 12's presence: broker events -> the CDK app's presence rule -> S3 ->
    CheckDeployment's reader. A session takeover makes the broker publish the new connection's
    ``connected`` before the old one's ``disconnected`` (DUPLICATE_CLIENTID), as AWS may: with one
    object per client the stale disconnect was the record and an online device was named offline."""
    suffix = uuid.uuid4().hex[:8]
    bucket, rule = _presence_rule(local_cloud, suffix)
    s3, iot = local_cloud.client("s3"), local_cloud.client("iot")
    config = {"bucket": bucket, "state_prefix": "state/"}
    try:
        device = provision_device(thing_group="presence")
        thing = device.thing_name
        first = Client(local_cloud, device, thing)
        clients.append(first)
        assert first.ack("connack") == 0
        assert len(_stored(s3, bucket, thing, 1)) == 1
        second = Client(local_cloud, device, thing)  # takes the session over
        clients.append(second)
        assert second.ack("connack") == 0
        names = _stored(s3, bucket, thing, 3)
        assert len(names) == 3 and sum(n.endswith("-disconnected.json") for n in names) == 1, names
        now = last_event(s3, config, thing)
        assert now is not None and now["eventType"] == "connected", (names, now)
        assert f"{now['versionNumber']}-{now['timestamp']}-connected.json" == max(names), names

        second.drop()
        assert len(_stored(s3, bucket, thing, 4)) == 4
        gone = last_event(s3, config, thing)
        assert gone is not None and gone["eventType"] == "disconnected", gone
        assert gone["disconnectReason"] == "CONNECTION_LOST"
        assert gone["versionNumber"] == now["versionNumber"]  # the second connection's own disconnect
    finally:
        with contextlib.suppress(iot.exceptions.ResourceNotFoundException):
            iot.delete_topic_rule(ruleName=rule)
