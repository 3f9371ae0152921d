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
#: The named profile / region every session uses (`mlops-edge --profile --region`); empty: boto3's
#: own lookup (AWS_PROFILE, AWS_REGION, the config file).
_CHOSEN: dict[str, str] = {}


def use_profile(profile: str | None = None, region: str | None = None) -> None:
    """Make every later client come from this profile and/or region, as ``aws --profile --region``.

    An explicit profile's credentials win over ``AWS_ACCESS_KEY_ID`` (boto3's rule for
    ``Session(profile_name=...)``). A profile missing from the config files raises botocore's
    ``ProfileNotFound`` here, before any command starts work.
    """
    chosen = {key: value for key, value in (("profile_name", profile), ("region_name", region)) if value}
    boto3.session.Session(**chosen)
    _CHOSEN.clear()
    _CHOSEN.update(chosen)
    _session.cache_clear()


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(**_CHOSEN)


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with retries and timeouts suited to the pipeline."""
    kwargs.setdefault("config", _CONFIG)
    return _session().client(service, **kwargs)
