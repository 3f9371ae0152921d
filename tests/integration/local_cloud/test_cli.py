"""`mlops-edge local up` prints what a user needs, records itself, and stops everything it started."""

from __future__ import annotations

import json
import os
import threading

import pytest

from mlops_edge.commands.local import run_local_up
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration


def test_local_up_prints_exports_and_stops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    stop = threading.Event()
    result: dict[str, float] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("startup", run_local_up(tmp_path, echo=lines.append, stop=stop))
    )
    thread.start()
    try:
        wait_until(lambda: any("Ctrl-C" in line for line in lines), timeout=30)
        text = "\n".join(lines)
        assert "AWS endpoint   http://127.0.0.1:" in text and "MQTT endpoint  mqtts://127.0.0.1:" in text
        assert 'eval "$(mlops-edge local env' in text and "local exec" in text
        record = json.loads((tmp_path / "local.json").read_text())
        assert record["pid"] == os.getpid() and record["env"]["AWS_ENDPOINT_URL"].startswith(
            "http://127.0.0.1:"
        )
        assert "endpoint_url = http://127.0.0.1:" in (tmp_path / "aws-config").read_text()
        assert not (tmp_path / "env.sh").exists()
        info = json.loads((tmp_path / "cloud" / "endpoint.json").read_text())
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result["startup"] > 0
    assert not (tmp_path / "local.json").exists()  # a stopped cloud leaves no record behind
    for pid in (info["pid"], info["mosquitto_pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
