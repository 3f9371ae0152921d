"""The MQTT test client (`mqtt sub`, `mqtt pub`) and `infer`, a one-shot request to a device.

Like the AWS IoT console's MQTT test client, but for the terminal; the broker comes from
`MLOPS_EDGE_MQTT_*` (local cloud or AWS IoT Core alike).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from typing import Any

import click

from mlops_edge.commands.common import UserError, console

#: AWS IoT's thing names (CreateThing): what may follow edge/ in a device's topics.
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
#: AWS IoT's limit on a topic name or filter (UTF-8 bytes).
MAX_TOPIC_BYTES = 256


def _connect():  # -> MqttClient, imported lazily so `--help` stays fast
    from pipeline.mqtt import MqttClient, MqttError, MqttSettings

    try:
        return MqttClient(MqttSettings.from_env())
    except MqttError as exc:
        raise UserError(str(exc)) from exc


def _parse_json(text: str, what: str) -> Any:
    """JSON from the command line, or a UserError naming what is wrong with it."""
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{what} nests arrays/objects too deeply to be a request") from None
    except ValueError as exc:
        raise UserError(f"{what} is not JSON: {exc}") from exc


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except RecursionError:
        raise UserError(f"{what} nests arrays/objects too deeply to be a request") from None


def _check_topic(topic: str, *, wildcards: bool) -> str:
    """A topic (``wildcards=False``) or a topic filter as MQTT and AWS IoT accept them."""
    what = "topic filter" if wildcards else "topic"
    if not topic:
        raise UserError(f"the {what} is empty")
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise UserError(f"the {what} is longer than AWS IoT's {MAX_TOPIC_BYTES} bytes")
    if "\0" in topic:
        raise UserError(f"the {what} contains a NUL character")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if not wildcards and ("+" in level or "#" in level):
            raise UserError(f"a topic to publish to cannot contain + or #: {topic!r}")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise UserError(f"'#' must be a whole level and the last one: {topic!r}")
        if "+" in level and level != "+":
            raise UserError(f"'+' must be a whole level: {topic!r}")
    return topic


def _check_thing(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not THING_NAME.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a thing name: AWS IoT allows 1 to 128 of a-z A-Z 0-9 : _ -"
        )
    return value


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
    _check_topic(topic, wildcards=True)
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
    _check_topic(topic, wildcards=False)
    _parse_json(payload, "the payload")
    with _connect() as client:
        client.publish(topic, payload.encode())
    console.print(f"published to {topic}")


@click.command()
@click.option("--thing", required=True, callback=_check_thing, help="Thing name of the core device to ask.")
@click.option("--json", "payload", required=True, help='Request, e.g. \'{"records": [{"age": 0.03, ...}]}\'.')
@click.option("--timeout", "timeout_s", type=float, default=10.0, show_default=True)
def infer(thing: str, payload: str, timeout_s: float) -> None:
    """Send one inference request to a device over MQTT and print its answer.

    The request gets an ``id`` unless it has one. The device's answer is printed whatever it says,
    an error included; an ``id`` that is not a non-empty string cannot be echoed, so the device's
    error answer without an id is taken as the answer to it.
    """
    request = _parse_json(payload, "--json")
    if not isinstance(request, dict):
        request = {"instances": request}
    request.setdefault("id", f"cli-{uuid.uuid4().hex[:12]}")
    body = _dumps(request, "--json")
    with _connect() as client:
        started = time.perf_counter()
        found = _ask(client, thing, request["id"], body, timeout_s)
    if found is None:
        raise UserError(
            f"no answer from {thing} within {timeout_s} s (is the device running the inference component? "
            "see `mlops-edge devices`)"
        )
    answer, rtt_ms = found
    console.print_json(json.dumps(answer))
    if not _usable_id(request["id"]):
        console.print(
            f"the device could not echo the request's id {request['id']!r}: an id must be a non-empty string",
            style="dim",
        )
    console.print(
        f"round trip {rtt_ms:.1f} ms (measured {1000 * (time.perf_counter() - started):.0f} ms)", style="dim"
    )
    if not answer.get("ok", True):
        raise SystemExit(1)


def _usable_id(request_id: Any) -> bool:
    return isinstance(request_id, str) and request_id != ""


def _ask(client: Any, thing: str, request_id: Any, body: str, timeout_s: float) -> tuple[dict, float] | None:
    """Publish one request and wait for its answer: ``(answer, round_trip_ms)`` or None.

    An answer is the result with the request's id, alone or inside an overload message
    ``{"results": [...]}``; for an id the device cannot echo, its error result without one.
    """
    usable = _usable_id(request_id)
    found: list[tuple[dict, float]] = []
    done = threading.Event()
    sent = time.perf_counter()

    def on_result(topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        try:
            message = json.loads(payload)
        except (ValueError, RecursionError):
            return
        if not isinstance(message, dict):
            return
        results = message.get("results")
        for result in results if isinstance(results, list) else [message]:
            if not isinstance(result, dict):
                continue
            if (usable and result.get("id") == request_id) or (
                not usable and result.get("id") is None and result.get("ok") is False
            ):
                if not found:
                    found.append((result, (now - sent) * 1000.0))
                done.set()

    client.subscribe(f"edge/{thing}/inference/result", on_result)
    sent = time.perf_counter()
    client.publish(f"edge/{thing}/inference/request", body)
    done.wait(timeout_s)
    return found[0] if found else None
