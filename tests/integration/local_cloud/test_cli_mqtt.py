"""The MQTT commands against the real broker: refusals print their reason code; jsonl pipes.

A device identity may use only its own topics (the broker ACL mirrors the IoT policy), so
subscribing or publishing on another thing's topics is refused in SUBACK/PUBACK with 0x87; the
commands must say so and exit 1 rather than wait in silence.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from typing import IO, Any

import pytest
from click.testing import CliRunner

from mlops_edge.main import main
from pipeline.mqtt import MqttClient, MqttSettings

pytestmark = pytest.mark.integration


def _device_env(local_cloud: Any, provision_device: Any) -> dict[str, str]:
    device = provision_device()
    return {
        **local_cloud.env(),
        "MLOPS_EDGE_MQTT_CA": str(device.ca_path),
        "MLOPS_EDGE_MQTT_CERT": str(device.cert_path),
        "MLOPS_EDGE_MQTT_KEY": str(device.key_path),
        "MLOPS_EDGE_MQTT_CLIENT_ID": device.thing_name,
    }


def test_refused_subscription_and_publish_print_the_reason_code(
    local_cloud: Any, provision_device: Any
) -> None:
    env = _device_env(local_cloud, provision_device)
    runner = CliRunner()
    cases = [
        (["mqtt", "sub", "edge/someone-else/#", "--timeout", "5"], "SUBACK"),
        (["mqtt", "pub", "edge/someone-else/inference/request", "{}"], "PUBACK"),
        (["infer", "--thing", "someone-else", "--json", "{}", "--timeout", "5"], "SUBACK"),
    ]
    for args, packet in cases:
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 1, (args, result.output)
        assert f"{packet} reason code 0x87 Not authorized" in result.output, result.output
        assert (
            "broker ACL / IoT policy" in result.output and env["MLOPS_EDGE_MQTT_CLIENT_ID"] in result.output
        )
        assert "Traceback" not in result.output


def _lines(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_mqtt_sub_jsonl_writes_one_object_per_message_through_a_pipe(local_cloud: Any) -> None:
    env = {**os.environ, **local_cloud.env()}
    topic = f"cli-jsonl/{uuid.uuid4().hex[:8]}"
    args = ["mqtt", "sub", f"{topic}/#", "--output", "jsonl", "--count", "3", "--timeout", "60"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_edge.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = _lines(proc.stdout), _lines(proc.stderr)
        assert "subscribed to" in err.get(timeout=60)
        with MqttClient(MqttSettings.from_env(local_cloud.env())) as client:
            client.publish(f"{topic}/a", {"id": "r1", "ok": True})
            client.publish(f"{topic}/b", b"plain words")
            # the first line arrives while the subscriber still waits for more: flushed per line
            first = json.loads(out.get(timeout=30))
            client.publish(f"{topic}/c", b"\xff\x00")
        records = [first, json.loads(out.get(timeout=30)), json.loads(out.get(timeout=30))]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert [(r["topic"], r["payload_encoding"]) for r in records] == [
        (f"{topic}/a", "json"),
        (f"{topic}/b", "text"),
        (f"{topic}/c", "base64"),
    ]
    assert records[0]["payload"] == {"id": "r1", "ok": True} and records[1]["payload"] == "plain words"
    assert all(r["qos"] == 1 and r["retain"] is False and r["received_at"].endswith("Z") for r in records)
