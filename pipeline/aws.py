"""The one boto3 client factory for pipeline code (CLI, Lambda cores).

Endpoints come from the standard environment (`AWS_ENDPOINT_URL`, `AWS_REGION`), which botocore
reads itself, so the same code talks to AWS or to the embedded local cloud without a branch.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=70)


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with retries and timeouts suited to the pipeline."""
    kwargs.setdefault("config", _CONFIG)
    return _session().client(service, **kwargs)
