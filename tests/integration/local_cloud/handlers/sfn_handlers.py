"""Small Lambda handlers for the local cloud's integration tests (zipped and created per test)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class Flaky(Exception):
    """Raised on purpose so a Retry can match it."""


class Rejected(Exception):
    """Raised on purpose so a Catch can match it."""


def double(event: dict[str, Any], context: Any) -> dict[str, Any]:
    print(f"doubling {event['value']}")
    return {"value": event["value"] * 2, "function": context.function_name, "env": os.environ.get("GREETING")}


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails until it has been called ``event['fail_times']`` times (state kept in a file)."""
    marker = Path(os.environ.get("COUNTER_DIR", "/tmp")) / f"flaky-{event['key']}"
    count = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(count + 1))
    if count < event["fail_times"]:
        raise Flaky(f"attempt {count + 1} failed")
    return {"attempts": count + 1}


def reject(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise Rejected(f"value {event.get('value')} rejected")


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(event.get("seconds", 10))
    return {"slept": True}


def crash(event: dict[str, Any], context: Any) -> None:
    os._exit(3)


def endpoint(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Proves the handler reaches the local cloud through AWS_ENDPOINT_URL alone."""
    import boto3

    s3 = boto3.client("s3")
    s3.put_object(Bucket=event["bucket"], Key="from-lambda.txt", Body=b"hi")
    return {"keys": [o["Key"] for o in s3.list_objects_v2(Bucket=event["bucket"])["Contents"]]}
