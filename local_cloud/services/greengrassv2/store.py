"""The greengrassv2 state file: rewritten whole on every change, read back when the endpoint starts.

The data is small (tens of records), so a full rewrite is simpler than a journal, and it is never
half-applied: written to a temporary file, fsync-ed, then renamed over the old one (durable
before the request that changed it is answered). Records serialize
themselves (``to_state``/``from_state``, keyed by the API's member names so the file reads like
API output); this module owns the file, its format number and the upgrade of format 1, the
untyped dicts with ``_``-prefixed private keys written before the records were typed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORMAT = 2


class SaveOnce:
    """Group commit: inside ``block()``, a thread's saves become one save at the block's end.

    The jobs transport answers a batch of MQTT requests after one write instead of one write per
    request (a 1,000-device state file takes tens of milliseconds to write and fsync); nothing is
    acknowledged before it is on disk, since the answers are published after the block. Other
    threads (HTTP requests) still save at once.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def defer(self) -> bool:
        """True (and the save noted) when the calling thread is inside a block."""
        if getattr(self._local, "depth", 0):
            self._local.dirty = True
            return True
        return False

    @contextmanager
    def block(self, save: Callable[[], None]) -> Iterator[None]:
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0 and getattr(local, "dirty", False):
                local.dirty = False
                save()


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        return upgrade(json.loads(self.path.read_text()))

    def write(self, data: dict[str, Any]) -> None:
        from local_cloud.persistence import atomic_write  # temp file, fsync, rename, fsync dir

        atomic_write(self.path, json.dumps({"format": FORMAT, **data}))


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 → 2: private keys get their names, executions their job id and raw statusDetails."""
    if data.get("format") == FORMAT:
        return data
    components = {
        name: {version: _upgrade_component(r) for version, r in versions.items()}
        for name, versions in (data.get("components") or {}).items()
    }
    deployments = {
        deployment_id: {
            **{k: v for k, v in d.items() if not k.startswith("_") and k != "jobDocument"},
            "configurationArn": d["jobDocument"]["configurationArn"],
        }
        for deployment_id, d in (data.get("deployments") or {}).items()
    }
    executions = {
        thing: {
            deployment_id: _upgrade_execution(thing, e, deployments[deployment_id]["iotJobId"])
            for deployment_id, e in by_deployment.items()
            if deployment_id in deployments
        }
        for thing, by_deployment in (data.get("executions") or {}).items()
    }
    return {
        **data,
        "format": FORMAT,
        "components": components,
        "deployments": deployments,
        "executions": executions,
    }


def _upgrade_component(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if not k.startswith("_")}
    out["recipe"] = record["_recipe"]
    return out


def _upgrade_execution(thing: str, e: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Format 1 kept statusDetails already interpreted; put back what the device sent."""
    parsed = e.get("statusDetails") or {}
    raw = {
        "detailed-deployment-status": parsed.get("detailedDeploymentStatus"),
        "deployment-error-stack": json.dumps(parsed["errorStack"]) if parsed.get("errorStack") else None,
        "deployment-error-types": json.dumps(parsed["errorTypes"]) if parsed.get("errorTypes") else None,
    }
    return {
        "thingName": thing,
        "jobId": job_id,
        "deploymentId": e["deploymentId"],
        "executionNumber": e["executionNumber"],
        "status": e["status"],
        "queuedAt": e["queuedAt"],
        "startedAt": e.get("startedAt"),
        "lastUpdatedAt": e["modifiedTimestamp"],
        "versionNumber": e["versionNumber"],
        "statusDetails": {k: v for k, v in raw.items() if v},
        "reason": e.get("reason") or "",
    }
