"""``GET /_mlops_edge/health``: what each part of the running local cloud is doing, as JSON.

LocalStack users know ``/_localstack/health``; a script (or ``mlops-edge local status``) asks this
route whether the cloud is usable, without credentials, and sees each service: the endpoint itself
(version, start time), the MQTT broker (its port, the clients connected now), the Lambda workers
(running, warm), the devices (registered things, Greengrass core devices) and the IAM mode.

It is read-only and unauthenticated: the endpoint listens on loopback only, and nothing here
changes state. Every figure is cheap to get (no scan of stored objects): the broker's connections
are counted from ``/proc/net/tcp`` rather than by subscribing to ``$SYS`` topics.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext

PATH = "/_mlops_edge/health"
#: TCP state ESTABLISHED in /proc/net/tcp's ``st`` column.
_ESTABLISHED = "01"


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def established_connections(port: int, proc_root: Path = Path("/proc/net")) -> int | None:
    """How many TCP connections are established to ``port`` on this machine (its server side).

    None where /proc/net/tcp does not exist (not Linux): the figure is then unknown, not zero.
    """
    counted = 0
    found = False
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc_root / name).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _ESTABLISHED and int(fields[1].rsplit(":", 1)[1], 16) == port:
                counted += 1
    return counted if found else None


class HealthProvider:
    """Serves ``GET /_mlops_edge/health``; reads the providers it is given, changes nothing."""

    def __init__(self, ctx: ServerContext, lambda_provider: Any = None) -> None:
        self.ctx = ctx
        self.lambda_provider = lambda_provider
        self.started = time.time()
        self._clients: dict[str, Any] = {}  # made once: a boto3 client costs ~0.5 s to create
        self._lock = threading.Lock()

    def start(self) -> None:
        """Make the clients in the background, so the first health check answers quickly too."""
        threading.Thread(target=self._devices, daemon=True, name="health-warm").start()

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.ctx.client(service)
            return self._clients[service]

    def handle(self, request: Request) -> Response | None:
        if request.path.rstrip("/") != PATH:
            return None
        if request.method not in ("GET", "HEAD"):
            body = {"message": f"{PATH} is read-only: use GET (not {request.method})"}
            return Response(
                json.dumps(body), status=405, mimetype="application/json", headers={"Allow": "GET"}
            )
        report = self.report()
        return Response(json.dumps(report, indent=1), status=200, mimetype="application/json")

    def report(self) -> dict[str, Any]:
        services = {
            "endpoint": self._endpoint(),
            "broker": self._broker(),
            "lambda": self._lambda(),
            "devices": self._devices(),
            "iam": {"up": True, "mode": self._iam_mode()},
        }
        healthy = all(service.get("up") for service in services.values())
        return {"status": "healthy" if healthy else "degraded", "services": services}

    def _endpoint(self) -> dict[str, Any]:
        return {
            "up": not self.ctx.stopping.is_set(),
            "url": self.ctx.endpoint_url,
            "port": self.ctx.port,
            "pid": os.getpid(),
            "version": _version("mlops-edge"),
            "moto_version": _version("moto"),
            "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "uptime_s": round(time.time() - self.started, 1),
            "region": self.ctx.region,
            "account_id": self.ctx.account_id,
        }

    def _broker(self) -> dict[str, Any]:
        broker = self.ctx.extras.get("broker")
        process = getattr(broker, "process", None)
        up = process is not None and process.poll() is None
        port = int(getattr(broker, "port", 0) or 0)
        return {
            "up": up,
            "host": "127.0.0.1",
            "port": port,
            "pid": process.pid if process is not None else None,
            "connected_clients": established_connections(port) if up and port else None,
        }

    def _lambda(self) -> dict[str, Any]:
        pool = getattr(self.lambda_provider, "pool", None)
        counts = pool.counts() if pool is not None else {"workers": 0, "warm": 0}
        return {"up": pool is not None, **counts}

    def _devices(self) -> dict[str, Any]:
        """Registered IoT things and Greengrass core devices (by status), through the APIs."""
        try:
            things = self._count(self._client("iot"), "list_things", "things")
            cores = self._all(self._client("greengrassv2"), "list_core_devices", "coreDevices")
        except Exception as exc:  # the report must still answer: say what failed, once
            return {"up": False, "error": f"{type(exc).__name__}: {exc}"}
        by_status: dict[str, int] = {}
        for core in cores:
            by_status[core.get("status", "UNKNOWN")] = by_status.get(core.get("status", "UNKNOWN"), 0) + 1
        return {
            "up": True,
            "registered_things": things,
            "core_devices": len(cores),
            "core_devices_by_status": by_status,
        }

    @staticmethod
    def _all(client: Any, operation: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in client.get_paginator(operation).paginate():
            items += page.get(key, [])
        return items

    def _count(self, client: Any, operation: str, key: str) -> int:
        return len(self._all(client, operation, key))

    def _iam_mode(self) -> str:
        mode = getattr(self.ctx.iam, "mode", None)
        return str(getattr(mode, "value", mode or "off"))
