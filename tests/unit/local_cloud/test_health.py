"""``GET /_mlops_edge/health`` (issue 14): each service's state, read-only, degraded when one is down."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local_cloud.health import HealthProvider, established_connections

# /proc/net/tcp: two established connections to :1F90 (8080), one listening, one to another port
PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2
   2: 0100007F:1F90 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 3
   3: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4
"""


def test_established_connections_counts_the_server_side_only(tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text(PROC_TCP)
    assert established_connections(8080, tmp_path) == 2
    assert established_connections(9999, tmp_path) == 0
    assert established_connections(8080, tmp_path / "absent") is None  # unknown, not zero


class _Pool:
    def counts(self) -> dict[str, int]:
        return {"workers": 3, "warm": 2, "busy": 1}


class _Lambda:
    pool = _Pool()


class _Ctx:
    port = 4610
    endpoint_url = "http://127.0.0.1:4610"
    region = "us-east-1"
    account_id = "123456789012"
    iam = None

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.extras: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        raise ConnectionError(f"{service} unreachable")


def _get(provider: HealthProvider, path: str, method: str = "GET") -> Any:
    return provider.handle(Request(EnvironBuilder(path=path, method=method).get_environ()))


def test_report_has_each_service_and_is_degraded_when_one_is_down() -> None:
    provider = HealthProvider(_Ctx(), _Lambda())  # type: ignore[arg-type]
    response = _get(provider, "/_mlops_edge/health")
    report = json.loads(response.get_data())
    services = report["services"]
    assert set(services) == {"endpoint", "broker", "lambda", "devices", "iam"}
    assert services["lambda"] == {"up": True, "workers": 3, "warm": 2, "busy": 1}
    assert services["endpoint"]["port"] == 4610 and services["endpoint"]["started_at"]
    assert services["iam"]["mode"] == "off"
    # no broker in extras, and the device APIs failed: both said, the report still answers
    assert services["broker"]["up"] is False
    assert services["devices"]["up"] is False and "unreachable" in services["devices"]["error"]
    assert report["status"] == "degraded"


def test_only_get_and_only_its_path() -> None:
    provider = HealthProvider(_Ctx(), _Lambda())  # type: ignore[arg-type]
    refused = _get(provider, "/_mlops_edge/health", "POST")
    assert refused.status_code == 405 and "read-only" in json.loads(refused.get_data())["message"]
    assert _get(provider, "/_local_cloud/health") is None and _get(provider, "/") is None
