"""Identities: client ids and subscriptions an IoT policy refuses, tried on the real broker.

Every attempt must be refused (CONNACK/SUBACK 0x87), and the device whose id was tried must still
answer.
"""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from typing import Any

from . import roundtrip

NOT_AUTHORIZED = 0x87


def _paho(setup: Any, ident: Any, client_id: str) -> tuple[Any, int]:
    """Connect with paho (MQTT 5); returns (client, CONNACK reason code)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    codes: list[int] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ident.ca_path),
        certfile=str(ident.cert_path),
        keyfile=str(ident.key_path),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.reconnect_delay_set(60, 120)
    client.on_connect = lambda c, u, f, rc, p: (codes.append(int(rc.value)), done.set())
    client.connect(setup.cloud.mqtt.host, setup.cloud.mqtt.port)
    client.loop_start()
    done.wait(5)
    return client, (codes[0] if codes else -1)


def _suback(client: Any, topic_filter: str) -> int:
    codes: list[int] = []
    done = threading.Event()
    client.on_subscribe = lambda c, u, mid, rcs, p: (codes.extend(int(r.value) for r in rcs), done.set())
    client.subscribe(topic_filter, qos=1)
    done.wait(5)
    return codes[0] if codes else -1


def identities(setup: Any) -> dict[str, Any]:
    """Every client id and subscription an IoT policy would refuse, tried on the real broker."""
    cloud, thing = setup.cloud, setup.thing
    attacker = cloud.provision_device(f"attacker-{uuid.uuid4().hex[:6]}", thing_group="reliability")
    other = cloud.provision_device(f"other-{uuid.uuid4().hex[:6]}", thing_group="reliability")
    pipeline = cloud.pipeline_identity
    connects = [
        ("device cert as the serving device's id", attacker, thing),
        ("device cert as another thing's id", attacker, other.thing_name),
        ("device cert as the control plane", attacker, "mlops-edge-control-plane"),
        ("device cert as the pipeline", attacker, "mlops-edge-pipeline"),
        ("device cert as a pipeline tool", attacker, "mlops-edge-tool-x"),
        ("device cert, broker-assigned id", attacker, ""),
        ("pipeline cert as a device", pipeline, thing),
        ("pipeline cert as the control plane", pipeline, "mlops-edge-control-plane"),
    ]
    refused_connects = []
    for label, ident, client_id in connects:
        client, code = _paho(setup, ident, client_id)
        client.loop_stop()
        client.disconnect()
        refused_connects.append({"attempt": label, "connack": code, "refused": code == NOT_AUTHORIZED})
    own, code = _paho(setup, attacker, attacker.thing_name)
    assert code == 0, f"a device could not connect with its own id ({code})"
    filters = [
        f"edge/{thing}/inference/request",
        f"edge/{thing}/#",
        f"$aws/things/{thing}/jobs/#",
        "#",
        "edge/+/inference/result",
        f"$share/g/edge/{thing}/#",
    ]
    subscriptions = [
        {"filter": f, "suback": (c := _suback(own, f)), "refused": c == NOT_AUTHORIZED} for f in filters
    ]
    own.loop_stop()
    own.disconnect()
    # the device whose id was tried first is still connected and answering
    requester = roundtrip._Requester(setup.client, thing, setup.rows)
    probe = f"after-identities-{uuid.uuid4().hex[:6]}"
    requester.send(probe, setup.rows[0])
    deadline = time.monotonic() + 5
    while not requester.answered_of([probe]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        "connects": refused_connects,
        "subscriptions": subscriptions,
        "tried": len(refused_connects) + len(subscriptions),
        "refused": sum(a["refused"] for a in refused_connects + subscriptions),
        "device_still_answering": bool(requester.answered_of([probe])),
    }
