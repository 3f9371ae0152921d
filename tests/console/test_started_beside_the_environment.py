"""`mlops-edge local up` (and `run --keep`, through the same helper) serves the console beside the
local cloud, prints its URL, and stops it by PID with everything else."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlops_edge.commands.local import run_local_up


def test_local_up_prints_the_console_url_and_stops_the_console(tmp_path: Path) -> None:
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: run_local_up(tmp_path, echo=lines.append, stop=stop))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not any("Ctrl-C" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        url = next(line.split("console at ", 1)[1] for line in lines if line.startswith("console at "))
        assert url.startswith("http://127.0.0.1:") and "token=" in url
        pid = json.loads((tmp_path / "console.json").read_text())["pid"]
        assert oct((tmp_path / "console.json").stat().st_mode & 0o777) == "0o600"
        base, token = url.split("/executions?token=")
        request = urllib.request.Request(f"{base}/api/input", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "example" in json.loads(response.read())
        # nothing is deployed on a bare local cloud: the page says so instead of failing
        request = urllib.request.Request(
            f"{base}/api/executions", headers={"Authorization": f"token {token}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 404 and "no mlops-edge state machine" in refused.value.read().decode()
    finally:
        stop.set()
        thread.join(timeout=30)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
