"""The MQTT test client (`mqtt sub`, `mqtt pub`) and `infer`, a one-shot request to a device.

Like the AWS IoT console's MQTT test client, but for the terminal; the broker comes from
`MLOPS_EDGE_MQTT_*` (local cloud or AWS IoT Core alike).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid

import click

from mlops_edge.commands.common import UserError, console


def _connect():  # -> MqttClient, imported lazily so `--help` stays fast
    from pipeline.mqtt import MqttClient, MqttError, MqttSettings

    try:
        return MqttClient(MqttSettings.from_env())
    except MqttError as exc:
        raise UserError(str(exc)) from exc


@click.group()
def mqtt() -> None:
    """Subscribe to and publish on the MQTT broker (local or AWS IoT Core)."""


@mqtt.command("sub")
@click.argument("topic")
@click.option("--count", type=int, default=0, help="Stop after this many messages (0: run until Ctrl-C).")
@click.option(
    "--timeout", "timeout_s", type=float, default=0.0, help="Stop after this many seconds (0: never)."
)
def sub(topic: str, count: int, timeout_s: float) -> None:
    """Print every message on TOPIC (wildcards + and # allowed) as it arrives."""
    received = 0
    done = threading.Event()

    def show(msg_topic: str, payload: bytes) -> None:
        nonlocal received
        received += 1
        try:
            body = json.dumps(json.loads(payload), separators=(",", ":"))
        except ValueError:
            body = payload.decode("utf-8", "replace")
        console.print(f"[bold]{msg_topic}[/bold] {body}", markup=True, soft_wrap=True)
        if count and received >= count:
            done.set()

    with _connect() as client:
        client.subscribe(topic, show)
        console.print(f"subscribed to {topic} (Ctrl-C to stop)", style="dim")
        with contextlib.suppress(KeyboardInterrupt):
            done.wait(timeout_s or None)
    if count and received < count:
        raise UserError(f"received {received} of {count} messages before the timeout")


@mqtt.command("pub")
@click.argument("topic")
@click.argument("payload")
def pub(topic: str, payload: str) -> None:
    """Publish PAYLOAD (JSON) on TOPIC with QoS 1."""
    try:
        json.loads(payload)
    except ValueError as exc:
        raise UserError(f"the payload is not JSON: {exc}") from exc
    with _connect() as client:
        client.publish(topic, payload.encode())
    console.print(f"published to {topic}")


@click.command()
@click.option("--thing", required=True, help="Thing name of the core device to ask.")
@click.option("--json", "payload", required=True, help='Request, e.g. \'{"records": [{"age": 0.03, ...}]}\'.')
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True)
def infer(thing: str, payload: str, timeout_s: float) -> None:
    """Send one inference request to a device over MQTT and print its answer."""
    from pipeline.mqtt import request_response

    try:
        request = json.loads(payload)
    except ValueError as exc:
        raise UserError(f"--json is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        request = {"instances": request}
    request.setdefault("id", f"cli-{uuid.uuid4().hex[:12]}")
    with _connect() as client:
        started = time.perf_counter()
        answers = request_response(
            client,
            request_topic=f"edge/{thing}/inference/request",
            result_topic=f"edge/{thing}/inference/result",
            requests=[request],
            timeout_s=timeout_s,
        )
    if request["id"] not in answers:
        raise UserError(
            f"no answer from {thing} within {timeout_s} s (is the device running the inference component? "
            "see `mlops-edge devices`)"
        )
    answer, rtt_ms = answers[request["id"]]
    console.print_json(json.dumps(answer))
    console.print(
        f"round trip {rtt_ms:.1f} ms (measured {1000 * (time.perf_counter() - started):.0f} ms)", style="dim"
    )
    if not answer.get("ok", True):
        raise SystemExit(1)
