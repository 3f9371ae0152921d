"""The IPC server against the unmodified awsiotsdk GreengrassCoreIPCClientV2."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import awsiot.greengrasscoreipc
import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    JsonMessage,
    PublishMessage,
    ResourceNotFoundError,
    UnauthorizedError,
)

from edge_runtime.core.ipc import (
    Authorizer,
    IpcServer,
    LocalPubSub,
    TokenRegistry,
    config_ops,
    lifecycle_ops,
    mqttproxy,
    pubsub,
)
from edge_runtime.core.ipc.codec import Message, MessageType, decode_from, encode, rpc_frame

THING = "dev-1"
ACL = {
    "aws.greengrass.ipc.pubsub": {
        "p1": {
            "operations": ["aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic"],
            "resources": ["local/+/x", "local/a"],
        }
    },
    "aws.greengrass.ipc.mqttproxy": {
        "m1": {"operations": ["aws.greengrass#PublishToIoTCore"], "resources": ["edge/{iot:thingName}/out"]},
        "m2": {"operations": ["aws.greengrass#SubscribeToIoTCore"], "resources": ["edge/{iot:thingName}/in"]},
    },
}


class FakeBridge:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int]] = []
        self.subs: dict[int, tuple[str, Any]] = {}

    def publish(self, topic: str, payload: bytes, qos: int, on_done: Any = None) -> None:
        self.published.append((topic, payload, qos))
        on_done(None)

    def subscribe(self, topic_filter: str, callback: Any) -> int:
        handle = len(self.subs) + 1
        self.subs[handle] = (topic_filter, callback)
        return handle

    def unsubscribe(self, handle: int) -> None:
        self.subs.pop(handle, None)


class FakeConfig:
    def __init__(self) -> None:
        self.data = {"comp.A": {"Topic": "t", "Nested": {"k": 1}, "accessControl": ACL}, "comp.B": {}}
        self.watchers: list[tuple[str, Any]] = []

    def has_component(self, component: str) -> bool:
        return component in self.data

    def get(self, component: str, key_path: list[str]) -> Any:
        node: Any = self.data.get(component)
        for key in key_path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def watch(self, component: str, key_path: list[str], callback: Any) -> int:
        self.watchers.append((component, callback))
        return len(self.watchers)

    def unwatch(self, handle: int) -> None:
        pass


@pytest.fixture
def core(tmp_path: Path) -> Iterator[dict[str, Any]]:
    tokens = TokenRegistry()
    config = FakeConfig()
    bridge = FakeBridge()
    states: list[tuple[str, str]] = []
    authorizer = Authorizer(lambda c: config.get(c, ["accessControl"]) or {}, THING)
    local = LocalPubSub()
    table = {}
    table.update(pubsub.handlers(local, authorizer))
    table.update(mqttproxy.handlers(bridge, authorizer))
    table.update(config_ops.handlers(config))
    table.update(lifecycle_ops.handlers(lambda c, s: states.append((c, s))))
    server = IpcServer(tmp_path / "ipc.socket", tokens, table)
    server.start()
    clients: list[GreengrassCoreIPCClientV2] = []

    def client(component: str) -> GreengrassCoreIPCClientV2:
        raw = awsiot.greengrasscoreipc.connect(
            ipc_socket=str(server.socket_path), authtoken=tokens.token_for(component), timeout=5
        )
        c = GreengrassCoreIPCClientV2(client=raw)
        clients.append(c)
        return c

    yield {"client": client, "bridge": bridge, "config": config, "states": states, "server": server}
    for c in clients:
        c.close()
    server.stop()


def test_codec_round_trip() -> None:
    frame = encode({":message-type": 0, "name": "value", "flag": True, "blob": b"\x00\x01"}, b'{"a":1}')
    buf = bytearray(frame + frame[:5])
    msg = decode_from(buf)
    assert isinstance(msg, Message) and msg.payload == b'{"a":1}'
    assert msg.headers == {":message-type": 0, "name": "value", "flag": True, "blob": b"\x00\x01"}
    assert decode_from(buf) is None and len(buf) == 5
    assert decode_from(bytearray(rpc_frame(MessageType.PING, stream_id=3))).stream_id == 3


def test_bad_token_is_refused(core: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"denied|Access"):
        awsiot.greengrasscoreipc.connect(
            ipc_socket=str(core["server"].socket_path), authtoken="nope", timeout=5
        )


def test_local_pubsub_with_wildcards_and_receive_modes(core: dict[str, Any]) -> None:
    a = core["client"]("comp.A")
    got_all: list[Any] = []
    got_others: list[Any] = []
    event = threading.Event()
    a.subscribe_to_topic(topic="local/+/x", on_stream_event=lambda e: (got_all.append(e), event.set()))
    a.subscribe_to_topic(
        topic="local/+/x", receive_mode="RECEIVE_MESSAGES_FROM_OTHERS", on_stream_event=got_others.append
    )
    a.publish_to_topic(
        topic="local/q/x", publish_message=PublishMessage(json_message=JsonMessage(message={"n": 1}))
    )
    assert event.wait(3)
    assert (
        got_all[0].json_message.message == {"n": 1} and got_all[0].json_message.context.topic == "local/q/x"
    )
    a.publish_to_topic(
        topic="local/q/x", publish_message=PublishMessage(binary_message=BinaryMessage(message=b"raw"))
    )
    deadline = time.time() + 3
    while len(got_all) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert got_all[1].binary_message.message == b"raw"
    assert got_others == []  # its own messages are filtered out


def test_access_control_is_enforced(core: dict[str, Any]) -> None:
    a = core["client"]("comp.A")
    b = core["client"]("comp.B")
    with pytest.raises(UnauthorizedError):
        b.publish_to_topic(
            topic="local/a", publish_message=PublishMessage(json_message=JsonMessage(message={}))
        )
    with pytest.raises(UnauthorizedError):
        a.publish_to_topic(
            topic="local/b", publish_message=PublishMessage(json_message=JsonMessage(message={}))
        )
    with pytest.raises(UnauthorizedError):
        a.subscribe_to_iot_core(topic_name="edge/other-thing/in", qos="1", on_stream_event=print)
    with pytest.raises(UnauthorizedError):
        a.publish_to_iot_core(topic_name="edge/other-thing/out", qos="1", payload=b"x")


def test_iot_core_bridge(core: dict[str, Any]) -> None:
    a = core["client"]("comp.A")
    a.publish_to_iot_core(topic_name=f"edge/{THING}/out", qos="1", payload=b"hello")
    assert core["bridge"].published == [(f"edge/{THING}/out", b"hello", 1)]
    got: list[Any] = []
    event = threading.Event()
    _, op = a.subscribe_to_iot_core(
        topic_name=f"edge/{THING}/in", qos="1", on_stream_event=lambda e: (got.append(e), event.set())
    )
    (_topic, deliver), *_ = core["bridge"].subs.values()
    deliver(f"edge/{THING}/in", b"req")
    assert event.wait(3)
    assert got[0].message.payload == b"req" and got[0].message.topic_name == f"edge/{THING}/in"
    op.close().result(3)
    deadline = time.time() + 3
    while core["bridge"].subs and time.time() < deadline:
        time.sleep(0.01)
    assert core["bridge"].subs == {}  # closing the stream unsubscribes


def test_configuration_and_state(core: dict[str, Any]) -> None:
    a = core["client"]("comp.A")
    assert a.get_configuration(key_path=["Topic"]).value == {"Topic": "t"}
    assert a.get_configuration(key_path=["Nested"]).value == {"k": 1}
    assert a.get_configuration(component_name="comp.A", key_path=[]).value["Topic"] == "t"
    with pytest.raises(ResourceNotFoundError):
        a.get_configuration(key_path=["Missing"])
    got: list[Any] = []
    event = threading.Event()
    a.subscribe_to_configuration_update(key_path=[], on_stream_event=lambda e: (got.append(e), event.set()))
    core["config"].watchers[0][1](["Topic"])
    assert event.wait(3)
    assert got[0].configuration_update_event.key_path == ["Topic"]
    a.update_state(state="RUNNING")
    assert core["states"] == [("comp.A", "RUNNING")]


def test_awscrt_callback_threads_keep_their_thread_state(core: dict[str, Any]) -> None:
    """With ``keep_thread_state`` a ``threading.local`` survives from one awscrt callback to the next.

    Without it awscrt's callbacks each get a fresh thread state: the inference engine's bound
    buffers (thread-local) were rebuilt for every request.
    """
    from edge_runtime.core.crt_threads import keep_thread_state

    server = core["server"]
    raw = awsiot.greengrasscoreipc.connect(
        ipc_socket=str(server.socket_path), authtoken=server.tokens.token_for("comp.A"), timeout=5
    )
    client = GreengrassCoreIPCClientV2(client=raw, executor=None)  # callbacks on awscrt's own thread
    local = threading.local()
    seen: list[int] = []
    done = threading.Event()

    def on_event(_event: Any) -> None:
        keep_thread_state()
        seen.append(getattr(local, "count", 0))
        local.count = seen[-1] + 1
        if len(seen) == 3:
            done.set()

    client.subscribe_to_topic(topic="local/a", on_stream_event=on_event)
    for _ in range(3):
        client.publish_to_topic(
            topic="local/a", publish_message=PublishMessage(binary_message=BinaryMessage(message=b"x"))
        )
    assert done.wait(3)
    assert seen == [0, 1, 2]
    client.close()
