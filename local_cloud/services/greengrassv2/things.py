"""Things and thing-group membership, as the IoT API reports them.

``ServerContext`` says providers call other services through ``client()`` (boto3 against this very
endpoint), never through moto's internals: membership is then whatever IoT's own API answers,
including state restored after a restart. The backend calls a ``ThingDirectory`` outside its lock
(an HTTP round trip to ourselves must not hold up MQTT or other requests); unit tests pass an
in-memory one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import ClientError

from local_cloud.services.greengrassv2.arns import Target, TargetKind


class ThingDirectory(Protocol):
    def members(self, target: Target) -> list[str] | None:
        """Thing names a deployment to ``target`` reaches (the thing itself, or the group's direct
        members); None when the thing or group does not exist, so one call answers both."""
        ...

    def groups_of(self, thing: str) -> set[str]:
        """Names of the thing groups ``thing`` is a direct member of (empty for an unknown thing)."""
        ...


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class IotThingDirectory:
    """A ``ThingDirectory`` over one shared IoT client (creating a boto3 client costs ~50 ms)."""

    def __init__(self, client_factory: Callable[[], Any], stopping: threading.Event | None = None) -> None:
        self._factory = client_factory
        self._stopping = stopping or threading.Event()
        self._client: Any = None
        self._lock = threading.Lock()

    def _iot(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def members(self, target: Target) -> list[str] | None:
        iot = self._iot()
        try:
            if target.kind is TargetKind.THING:
                iot.describe_thing(thingName=target.name)
                return [target.name]
            pages = iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=target.name)
            return [name for page in pages for name in page["things"]]
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def groups_of(self, thing: str) -> set[str]:
        if self._stopping.is_set():
            return set()  # the endpoint no longer serves the call we would make
        pages = self._iot().get_paginator("list_thing_groups_for_thing").paginate(thingName=thing)
        try:
            return {g["groupName"] for page in pages for g in page["thingGroups"]}
        except ClientError as exc:
            if _not_found(exc):
                return set()
            raise
