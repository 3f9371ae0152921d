"""The MQTT test client (`mqtt sub`, `mqtt pub`) and `infer`, a one-shot request to a device.

Like the AWS IoT console's MQTT test client, but for the terminal; the broker comes from
`MLOPS_EDGE_MQTT_*` (local cloud or AWS IoT Core alike). A SUBACK or PUBACK failure reason code
(a refused subscription otherwise looks like silence) is printed with what it usually means here,
and the command exits 1.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from mlops_edge.commands.common import UserError, console, err_console

#: AWS IoT's thing names (CreateThing): what may follow edge/ in a device's topics.
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
#: AWS IoT's limit on a topic name or filter (UTF-8 bytes).
MAX_TOPIC_BYTES = 256


#: MQTT 5 failure reason codes of SUBACK/PUBACK and what they usually mean with this project's
#: brokers (the local mosquitto behind an ACL that mirrors the IoT policy; AWS IoT Core).
REASON_HINTS: dict[int, str] = {
    0x80: "unspecified error: the broker refused without saying why (MQTT 3.1.1 brokers report every "
    "refusal so; on AWS IoT Core often the IoT policy)",
    0x83: "implementation specific error: the broker's own rule refused it (AWS IoT: a reserved $aws topic)",
    0x87: "not authorized: this identity's broker ACL / IoT policy does not allow it (a device may use "
    "only edge/<its thing name>/...; set MLOPS_EDGE_MQTT_CERT/KEY/CLIENT_ID to an identity that may)",
    0x8F: "topic filter invalid: the broker does not accept this filter (AWS IoT: at most 8 levels "
    "after the first, 256 bytes, no $ topics but $aws)",
    0x90: "topic name invalid: the broker does not accept this topic",
    0x91: "packet identifier in use: the client reused an id still in flight; retry",
    0x97: "quota exceeded: a broker limit was hit (AWS IoT Core: 50 subscriptions or 100 publishes a "
    "second per connection, or the account's rate)",
    0x99: "payload format invalid: the payload does not match its declared format",
    0x9E: "shared subscriptions not supported by this broker",
    0xA1: "subscription identifiers not supported by this broker",
    0xA2: "wildcard subscriptions not supported by this broker (or not allowed to this identity)",
}


def refusal_message(exc: Any, client_id: str | None = None) -> str:
    """One line for a ``pipeline.mqtt.MqttRefused``: what was refused, the code, and why it usually is."""
    what = "subscription to" if exc.packet == "SUBACK" else "publish to"
    hint = REASON_HINTS.get(exc.reason_code, "see the MQTT 5 specification, section 2.4")
    who = f" (client id {client_id})" if client_id else ""
    return (
        f"the broker refused the {what} {exc.topic}{who}: {exc.packet} reason code "
        f"0x{exc.reason_code:02X} {exc.reason} — {hint}"
    )


@contextlib.contextmanager
def _connect() -> Iterator[Any]:  # -> MqttClient, imported lazily so `--help` stays fast
    """A connected client; a refusal or a broken connection becomes a UserError (exit 1)."""
    from pipeline.mqtt import MqttClient, MqttError, MqttRefused, MqttSettings

    try:
        settings = MqttSettings.from_env()
        with MqttClient(settings) as client:
            yield client
    except MqttRefused as exc:
        raise UserError(refusal_message(exc, settings.client_id)) from exc
    except MqttError as exc:
        raise UserError(str(exc)) from exc


def message_record(message: Any, received_at: datetime | None = None) -> dict[str, Any]:
    """One received message as a JSON object (`mqtt sub --output jsonl`, docs/cli-json.md).

    ``payload`` is the parsed JSON when the payload is JSON, else the UTF-8 text, else base64;
    ``payload_encoding`` says which (json, text, base64).
    """
    raw: bytes = message.payload
    try:
        payload, encoding = json.loads(raw), "json"
    except (ValueError, RecursionError):
        try:
            payload, encoding = raw.decode("utf-8"), "text"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    when = received_at or datetime.now(UTC)
    return {
        "topic": message.topic,
        "qos": message.qos,
        "retain": bool(message.retain),
        "payload": payload,
        "payload_encoding": encoding,
        "received_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


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
@click.option(
    "--count", type=click.IntRange(min=0), default=0, help="Stop after this many messages (0: until Ctrl-C)."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Stop after this many seconds (0: never).",
)
@click.option(
    "--output",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="text, or jsonl: one JSON object a line (topic, qos, retain, payload, received_at), for jq.",
)
def sub(topic: str, count: int, timeout_s: float, output: str) -> None:
    """Print every message on TOPIC (wildcards + and # allowed) as it arrives."""
    _check_topic(topic, wildcards=True)
    received = 0
    done = threading.Event()
    lock = threading.Lock()

    def show(message: Any) -> None:
        nonlocal received
        with lock:
            if count and received >= count:
                return
            received += 1
            if output == "jsonl":
                sys.stdout.write(json.dumps(message_record(message), sort_keys=True) + "\n")
                sys.stdout.flush()  # one line as each message arrives, through a pipe too
            else:
                try:
                    body = json.dumps(json.loads(message.payload), separators=(",", ":"))
                except (ValueError, RecursionError):
                    body = message.payload.decode("utf-8", "replace")
                console.print(f"[bold]{message.topic}[/bold] {body}", markup=True, soft_wrap=True)
            if count and received >= count:
                done.set()

    with _connect() as client:
        client.subscribe(topic, show, raw=True)
        status = err_console if output == "jsonl" else console
        status.print(f"subscribed to {topic} (Ctrl-C to stop)", style="dim")
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
