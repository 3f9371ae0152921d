"""Requests as botocore sends them, captured before they leave, as WSGI environs."""

from __future__ import annotations

import contextlib
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from werkzeug.test import EnvironBuilder

ENDPOINT = "http://127.0.0.1:4566"


def signed(
    service: str,
    operation: str,
    params: dict[str, Any],
    *,
    access_key: str = "ASIAEXAMPLE",
    region: str = "us-east-1",
) -> tuple[dict[str, Any], bytes]:
    """(environ, body) of the request ``client(service).operation(**params)`` sends."""
    captured: list[Any] = []

    def grab(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)
        raise _Sent()

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key="secret",
        aws_session_token="token",
        region_name=region,
    )
    client = session.client(service, endpoint_url=ENDPOINT, config=Config(retries={"max_attempts": 0}))
    client.meta.events.register("before-send", grab)
    with contextlib.suppress(_Sent):
        getattr(client, operation)(**params)
    request = captured[0]
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    environ = EnvironBuilder(
        method=request.method,
        base_url=ENDPOINT,
        path=request.url[len(ENDPOINT) :].split("?", 1)[0] or "/",
        query_string=request.url.split("?", 1)[1] if "?" in request.url else "",
        headers={k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()},
        data=body,
    ).get_environ()
    return environ, body


class _Sent(Exception):
    """Raised instead of sending."""
