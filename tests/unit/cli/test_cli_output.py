"""`--output json` carries the facts of the table, from the same data; `mqtt sub --output jsonl` records.

The AWS side is a fake client returning what boto3 returns (datetimes with a time zone), so the
table and the JSON of one command are compared on identical input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_edge.commands import aws as aws_commands
from mlops_edge.commands.mqtt import message_record
from mlops_edge.main import main
from tests.unit.report.test_history import History

T0 = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-edge-pipeline"


class FakeSfn:
    def __init__(self, history: list[dict[str, Any]] | None = None) -> None:
        self.history = history or []
        self.asked: dict[str, Any] = {}

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.asked = kwargs
        prefix = MACHINE.replace(":stateMachine:", ":execution:")
        return {
            "executions": [
                {
                    "name": "run-b",
                    "executionArn": f"{prefix}:run-b",
                    "status": "RUNNING",
                    "startDate": T0 + timedelta(minutes=5),
                },
                {
                    "name": "run-a",
                    "executionArn": f"{prefix}:run-a",
                    "status": "FAILED",
                    "startDate": T0,
                    "stopDate": T0 + timedelta(seconds=90),
                },
            ]
        }

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        return {"events": self.history}


class FakeGreengrass:
    def get_paginator(self, name: str) -> Any:
        cores = [
            {"coreDeviceThingName": "edge-1", "status": "HEALTHY", "lastStatusUpdateTimestamp": T0},
            {"coreDeviceThingName": "edge-2", "status": "UNHEALTHY"},
        ]
        return SimpleNamespace(paginate=lambda: [{"coreDevices": cores}])

    def list_installed_components(self, coreDeviceThingName: str) -> dict[str, Any]:
        if coreDeviceThingName == "edge-2":
            return {"installedComponents": []}
        return {
            "installedComponents": [
                {"componentName": "com.example.Inference", "componentVersion": "1.0.3"},
                {"componentName": "com.example.Model", "componentVersion": "2.1.0"},
            ]
        }

    def list_effective_deployments(self, coreDeviceThingName: str) -> dict[str, Any]:
        if coreDeviceThingName == "edge-2":
            return {"effectiveDeployments": []}
        return {
            "effectiveDeployments": [
                {"deploymentName": "", "deploymentId": "d-123", "coreDeviceExecutionStatus": "SUCCEEDED"}
            ]
        }


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeSfn, FakeGreengrass]:
    monkeypatch.delenv("MLOPS_EDGE_STATE_MACHINE_ARN", raising=False)
    h = History().add("ExecutionStarted", 0).enter("Task", "Configure", 0).exit("Task", "Configure", 1.5)
    h.enter("Task", "Train", 1.5).add(
        "ExecutionFailed", 4, executionFailedEventDetails={"error": "TrainingFailed", "cause": "one class"}
    )
    sfn, gg = FakeSfn(h.events), FakeGreengrass()
    monkeypatch.setattr(aws_commands, "_clients", lambda: (sfn, gg))
    # every AWS command builds the session first (use_aws); here there is no AWS to build it for
    monkeypatch.setattr("mlops_edge.commands.common.use_aws", lambda profile, region: None)
    return sfn, gg


def _both(args: list[str]) -> tuple[str, Any]:
    runner = CliRunner()
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    as_json = runner.invoke(main, [*args, "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    return table.output, json.loads(as_json.output)


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_executions_list_json_has_the_tables_rows(fakes: tuple[FakeSfn, FakeGreengrass]) -> None:
    table, document = _both(["executions", "list", "--state-machine", MACHINE])
    records = document["executions"]
    assert [r["name"] for r in records] == ["run-b", "run-a"]
    assert records[1]["started"] == "2026-03-01T12:00:00.250Z"
    assert records[1]["stopped"] == "2026-03-01T12:01:30.250Z" and records[0]["stopped"] is None
    lines = table.splitlines()
    for r in records:
        (row,) = [line for line in lines if f" {r['name']} " in line]
        assert r["status"] in row and _local(r["started"]) in row
        assert (r["stopped"] is None) or _local(r["stopped"]) in row
    assert document["state_machine_arn"] == MACHINE


def test_executions_history_json_has_the_tables_states(fakes: tuple[FakeSfn, FakeGreengrass]) -> None:
    table, document = _both(["executions", "history", "run-a", "--state-machine", MACHINE])
    assert document["status"] == "FAILED" and document["error"] == "TrainingFailed"
    assert document["execution_arn"].endswith(":execution:mlops-edge-pipeline:run-a")
    states = {s["state"]: s for s in document["states"]}
    assert states["Configure"]["visits"] == 1 and states["Configure"]["time_s"] == 1.5
    for s in document["states"]:
        (row,) = [line for line in table.splitlines() if f" {s['state']} " in line]
        assert s["status"] in row and f"{s['time_s']:.2f}s" in row
    assert "execution FAILED — TrainingFailed: one class" in table


def test_devices_json_has_the_tables_devices(fakes: tuple[FakeSfn, FakeGreengrass]) -> None:
    table, document = _both(["devices"])
    one, two = document["devices"]
    assert one["components"] == [
        {"name": "com.example.Inference", "version": "1.0.3"},
        {"name": "com.example.Model", "version": "2.1.0"},
    ]
    assert one["latest_deployment"] == {"deployment_id": "d-123", "name": None, "status": "SUCCEEDED"}
    assert one["last_report"] == "2026-03-01T12:00:00.250Z"
    assert two["latest_deployment"] is None and two["last_report"] is None
    assert "d-123: SUCCEEDED" in table and _local(one["last_report"]) in table
    assert "com.example.Inference@1.0.3" in table and "UNHEALTHY" in table


def test_json_is_stable_sorted_keys(fakes: tuple[FakeSfn, FakeGreengrass]) -> None:
    result = CliRunner().invoke(main, ["devices", "--output", "json"])
    text = result.output
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize(
    ("payload", "expected", "encoding"),
    [
        (b'{"id": "r1", "ok": true}', {"id": "r1", "ok": True}, "json"),
        (b"plain words", "plain words", "text"),
        (b"\xff\x00\xfe", "/wD+", "base64"),
    ],
)
def test_jsonl_record_parses_json_else_text_else_base64(payload: bytes, expected: Any, encoding: str) -> None:
    message = SimpleNamespace(topic="edge/a/inference/result", qos=1, retain=0, payload=payload)
    record = message_record(message, received_at=T0)
    assert record == {
        "topic": "edge/a/inference/result",
        "qos": 1,
        "retain": False,
        "payload": expected,
        "payload_encoding": encoding,
        "received_at": "2026-03-01T12:00:00.250Z",
    }


class FakeLogs:
    """``filter_log_events`` pages as CloudWatch Logs returns them (messages end with a newline)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.asked: dict[str, Any] = {}

    def get_paginator(self, name: str) -> Any:
        assert name == "filter_log_events"

        def paginate(**kwargs: Any) -> list[dict[str, Any]]:
            self.asked = kwargs
            return [{"events": self.events[:1]}, {"events": self.events[1:]}]

        return SimpleNamespace(paginate=paginate)


def test_logs_json_has_the_tables_events(monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = int(T0.timestamp() * 1000)
    cw = FakeLogs(
        [
            {"timestamp": t0, "message": "START RequestId: 1\n"},
            {"timestamp": t0 + 1500, "message": "ERROR export failed: parity 2e-3 > 1e-4\n"},
        ]
    )
    monkeypatch.setattr("pipeline.aws.client", lambda service, **_: cw)
    monkeypatch.setattr("mlops_edge.commands.common.use_aws", lambda profile, region: None)
    table, document = _both(["logs", "export_onnx", "--filter", "ERROR"])
    assert document["log_group"] == "/aws/lambda/mlops-edge-pipeline-export-onnx"
    assert cw.asked["logGroupName"] == document["log_group"] and cw.asked["filterPattern"] == "ERROR"
    assert [e["message"] for e in document["events"]] == [
        "START RequestId: 1",
        "ERROR export failed: parity 2e-3 > 1e-4",
    ]
    assert [e["timestamp"] for e in document["events"]] == [
        "2026-03-01T12:00:00.250Z",
        "2026-03-01T12:00:01.750Z",
    ]
    for event in document["events"]:  # the same events, one line each, in the table's form
        clock = datetime.fromisoformat(event["timestamp"]).astimezone().strftime("%H:%M:%S")
        assert f"{clock} {event['message']}" in table.splitlines()
