"""Helpers shared by the local cloud's integration tests."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HANDLERS = Path(__file__).parent / "handlers"


def handler_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in HANDLERS.glob("*.py"):
            archive.write(path, path.name)
    return buf.getvalue()


@pytest.fixture
def make_function(local_cloud, lambda_role_arn) -> Callable[..., str]:  # type: ignore[no-untyped-def]
    """Create a Lambda function from tests/.../handlers; returns its ARN."""
    lam = local_cloud.client("lambda")
    code = handler_zip()

    def _make(handler: str, *, timeout: int = 10, env: dict[str, str] | None = None) -> str:
        name = f"{handler.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:6]}"
        fn = lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=lambda_role_arn,
            Handler=f"sfn_handlers.{handler}",
            Code={"ZipFile": code},
            Timeout=timeout,
            Environment={"Variables": env or {}},
        )
        return str(fn["FunctionArn"])

    return _make


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
