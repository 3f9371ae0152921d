"""Lambda Invoke runs the real handler: payloads, errors, timeouts, crashes and logs as on AWS."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

pytestmark = pytest.mark.integration


def test_invoke_returns_handler_result_with_function_env(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    arn = make_function("double", env={"GREETING": "hello"})
    lam = local_cloud.client("lambda")
    out = lam.invoke(FunctionName=arn, Payload=json.dumps({"value": 21}))
    assert "FunctionError" not in out
    assert json.loads(out["Payload"].read()) == {"value": 42, "function": arn.split(":")[-1], "env": "hello"}


def test_handled_error_has_aws_shape_and_logs_reach_cloudwatch(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    arn = make_function("reject")
    name = arn.split(":")[-1]
    lam = local_cloud.client("lambda")
    out = lam.invoke(FunctionName=name, Payload=b'{"value": 7}', LogType="Tail")
    assert out["FunctionError"] == "Unhandled"
    body = json.loads(out["Payload"].read())
    assert body["errorType"] == "Rejected"
    assert body["errorMessage"] == "value 7 rejected"
    assert any("in reject" in frame for frame in body["stackTrace"])
    assert "Rejected" in base64.b64decode(out["LogResult"]).decode()
    logs = local_cloud.client("logs")
    events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    messages = [e["message"] for e in events]
    assert messages[0].startswith("START RequestId:")
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_timeout_kills_worker_and_next_invoke_works(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    arn = make_function("sleepy", timeout=1)
    lam = local_cloud.client("lambda")
    started = time.monotonic()
    out = lam.invoke(FunctionName=arn, Payload=b'{"seconds": 30}')
    assert time.monotonic() - started < 5
    body = json.loads(out["Payload"].read())
    assert out["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    out = lam.invoke(FunctionName=arn, Payload=b'{"seconds": 0}')
    assert json.loads(out["Payload"].read()) == {"slept": True}


def test_crash_is_reported_and_worker_replaced(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    arn = make_function("crash")
    lam = local_cloud.client("lambda")
    for _ in range(2):
        out = lam.invoke(FunctionName=arn, Payload=b"{}")
        assert out["FunctionError"] == "Unhandled"
        assert json.loads(out["Payload"].read())["errorType"] == "Runtime.ExitError"


def test_handler_reaches_local_cloud_through_endpoint_env(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    bucket = f"lambda-{uuid.uuid4().hex[:8]}"
    local_cloud.client("s3").create_bucket(Bucket=bucket)
    arn = make_function("endpoint")
    out = local_cloud.client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"bucket": bucket}))
    assert json.loads(out["Payload"].read()) == {"keys": ["from-lambda.txt"]}


def test_unknown_function_is_resource_not_found(local_cloud) -> None:  # type: ignore[no-untyped-def]
    lam = local_cloud.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")


def test_event_and_dry_run_invocations(local_cloud, make_function, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.local_cloud.conftest import wait_until

    arn = make_function("flaky", env={"COUNTER_DIR": str(tmp_path)})
    lam = local_cloud.client("lambda")
    assert lam.invoke(FunctionName=arn, InvocationType="DryRun")["StatusCode"] == 204
    out = lam.invoke(
        FunctionName=arn, InvocationType="Event", Payload=json.dumps({"key": "ev", "fail_times": 0})
    )
    assert out["StatusCode"] == 202
    wait_until(lambda: (tmp_path / "flaky-ev").exists(), timeout=10)
