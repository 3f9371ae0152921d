"""Greengrass V2 control-plane state: components, deployments, job executions, core devices.

Everything is plain JSON-able dicts keyed by the API's member names, persisted to one file under
the state dir on every change (small data; a restart of the endpoint restores it exactly).
Timestamps are epoch seconds (what the rest-json protocol puts on the wire).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from local_cloud.services.greengrassv2.exceptions import ValidationException

COMPONENT_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):greengrass:(?P<region>[^:]*):(?P<account>aws|[0-9]+):components:(?P<name>[^:]+)(?::versions:(?P<version>[^:]+))?$"
)
TARGET_ARN = re.compile(r"^arn:[^:]*:iot:[^:]*:[0-9]+:(?P<kind>thing|thinggroup)/(?P<name>.+)$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

TERMINAL_EXECUTION = {"SUCCEEDED", "COMPLETED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"}
PENDING_EXECUTION = {"QUEUED", "IN_PROGRESS"}


def parse_component_arn(arn: str, *, need_version: bool) -> tuple[str, str | None]:
    """(name, version) of a component ARN; ValidationException when it is not one."""
    found = COMPONENT_ARN.match(arn or "")
    if not found or (need_version and not found["version"]):
        expected = "component version ARN" if need_version else "component ARN"
        raise ValidationException(
            f"{arn!r} is not a valid {expected}",
            fields=[{"name": "arn", "message": "Value does not match the ARN pattern"}],
        )
    return found["name"], found["version"]


def parse_target_arn(arn: str) -> tuple[str, str]:
    found = TARGET_ARN.match(arn or "")
    if not found:
        raise ValidationException(
            f"{arn!r} is not a valid target ARN (an IoT thing or thing group ARN)",
            fields=[{"name": "targetArn", "message": "Value does not match the ARN pattern"}],
        )
    return found["kind"], found["name"]


class GreengrassState:
    """The whole control-plane state behind one re-entrant lock, saved on every change."""

    #: What is written to disk on every change and read back at start.
    PERSISTED = (
        "components",
        "deployments",
        "executions",
        "core_devices",
        "revisions",
        "client_tokens",
        "tags",
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.components: dict[str, dict[str, dict[str, Any]]] = {}  # name -> version -> record
        self.deployments: dict[str, dict[str, Any]] = {}  # deploymentId -> record
        self.executions: dict[str, dict[str, dict[str, Any]]] = {}  # thing -> deploymentId -> record
        self.core_devices: dict[str, dict[str, Any]] = {}  # thing -> record
        self.revisions: dict[str, int] = {}  # targetArn -> last revision
        self.client_tokens: dict[str, str] = {}  # clientToken -> resource id
        self.tags: dict[str, dict[str, str]] = {}  # resource ARN -> tags
        if path.exists():
            data = json.loads(path.read_text())
            for key in self.PERSISTED:
                setattr(self, key, data.get(key, {}))

    def save(self) -> None:
        with self.lock:
            data = {key: getattr(self, key) for key in self.PERSISTED}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self.path)
