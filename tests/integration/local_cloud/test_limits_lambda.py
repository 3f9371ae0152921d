"""Lambda Invoke refuses what AWS refuses: 6 MB requests, 1 MB async events, 6 MB responses.

Sources: the Invoke API reference ("For synchronous invocations, the maximum payload size is 6 MB.
For asynchronous invocations, the maximum payload size is 1 MB."); the messages are the ones AWS
returns ("Request must be smaller than 6291456 bytes for the InvokeFunction operation",
"<n> byte payload is too large for the Event invocation type (limit <limit> bytes)",
Function.ResponseSizeTooLarge "Response payload size exceeded maximum allowed payload size
(6291556 bytes).").
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

SYNC_LIMIT = 6 * 1024 * 1024  # 6,291,456
ASYNC_LIMIT = 1024 * 1024
RESPONSE_LIMIT = 6 * 1024 * 1024 + 100  # 6,291,556

HANDLER_SOURCE = '''
import json


def sized(event, context):
    """A result whose JSON (as the runtime serializes it) is exactly event["bytes"] bytes."""
    return {"blob": "x" * (int(event["bytes"]) - len(json.dumps({"blob": ""})))}


def received(event, context):
    return {"received": len(json.dumps(event, separators=(",", ":")))}
'''


def make_limits_function(local_cloud, role_arn: str, handler: str, timeout: int = 30) -> str:  # type: ignore[no-untyped-def]
    """A function running ``limits_handlers.<handler>`` (sized / received); returns its ARN."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("limits_handlers.py", HANDLER_SOURCE)
    fn = local_cloud.client("lambda").create_function(
        FunctionName=f"limits-{handler}-{uuid.uuid4().hex[:6]}",
        Runtime="python3.11",
        Role=role_arn,
        Handler=f"limits_handlers.{handler}",
        Code={"ZipFile": buf.getvalue()},
        Timeout=timeout,
        MemorySize=1024,
    )
    return str(fn["FunctionArn"])


def _json_string_of(size: int) -> bytes:
    """A JSON document (one string) of exactly ``size`` bytes."""
    return b'"' + b"x" * (size - 2) + b'"'


def test_sync_request_over_6mb_is_refused_with_413(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    arn = make_limits_function(local_cloud, lambda_role_arn, "received")
    lam = local_cloud.client("lambda")
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=arn, Payload=_json_string_of(SYNC_LIMIT + 1))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert refused.value.response["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )
    # the boundary: exactly 6,291,456 bytes is accepted and reaches the handler whole
    out = lam.invoke(FunctionName=arn, Payload=_json_string_of(SYNC_LIMIT))
    assert "FunctionError" not in out
    assert json.loads(out["Payload"].read()) == {"received": SYNC_LIMIT}


def test_event_request_over_1mb_is_refused_with_413(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    arn = make_limits_function(local_cloud, lambda_role_arn, "received")
    lam = local_cloud.client("lambda")
    with pytest.raises(ClientError) as refused:
        lam.invoke(FunctionName=arn, InvocationType="Event", Payload=_json_string_of(ASYNC_LIMIT + 1))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert refused.value.response["Error"]["Message"] == (
        f"{ASYNC_LIMIT + 1} byte payload is too large for the Event invocation type (limit {ASYNC_LIMIT} bytes)"
    )
    accepted = lam.invoke(FunctionName=arn, InvocationType="Event", Payload=_json_string_of(ASYNC_LIMIT))
    assert accepted["StatusCode"] == 202


def test_response_over_6mb_is_a_function_error(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    arn = make_limits_function(local_cloud, lambda_role_arn, "sized")
    lam = local_cloud.client("lambda")
    out = lam.invoke(FunctionName=arn, Payload=json.dumps({"bytes": 7_000_000}))
    assert out["StatusCode"] == 200  # as on AWS: the invoke succeeds, the function "failed"
    assert out["FunctionError"] == "Unhandled"
    assert json.loads(out["Payload"].read()) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    }
    # the whole 6,291,556 bytes are usable
    out = lam.invoke(FunctionName=arn, Payload=json.dumps({"bytes": RESPONSE_LIMIT}))
    assert "FunctionError" not in out
    assert len(out["Payload"].read()) == RESPONSE_LIMIT
