"""Issue 13 item 3: a part of the local environment dies during `mlops-edge run`.

The run is the real CLI on its own state directory; once its execution has started, the test
SIGKILLs one process of the environment (the endpoint, whose PID the endpoint writes to
``endpoint.json``, or a device, whose PID its core writes to ``core.pid``). The run must end with a
summary naming that part and its log, a report with ``status: ERROR``, a non-zero exit code, no
traceback, and no process of the state directory left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_edge.environment.local_env import orphans_of

pytestmark = pytest.mark.e2e

NAME = "killed"


def _run_and_kill(tmp_path: Path, cdk_assembly: Any, pid_of: Any, *, devices: int = 1) -> tuple[Any, Path]:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_EDGE_"))}
    command = [sys.executable, "-m", "mlops_edge.main", "run", "--state-dir", str(state)]
    command += ["--cdk-out", str(cdk_assembly.directory), "--devices", str(devices), "--name", NAME]
    command += ["--hp", "num_round=20", "--timeout", "300"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        started = state / "runs" / NAME / "input.json"  # written just before StartExecution
        deadline = time.monotonic() + 240
        while not started.exists():
            assert proc.poll() is None, f"the run ended before its execution started:\n{proc.communicate()}"
            assert time.monotonic() < deadline, "the execution did not start"
            time.sleep(0.2)
        time.sleep(3)  # mid-run: the execution is in its first states
        os.kill(pid_of(state), signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return (proc.returncode, out, err), state


def _check(result: Any, state: Path, part: str, log: Path) -> dict[str, Any]:
    (code, out, err) = result
    flat = " ".join(out.split())
    assert code == 3, (code, out[-3000:], err[-3000:])
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    assert f"ERROR: the local environment's {part} died" in flat, out[-3000:]
    assert str(log) in out.replace("\n", ""), out[-3000:]
    report = json.loads((state / "runs" / NAME / "report.json").read_text())
    assert report["status"] == "ERROR"
    assert report["error"]["environment"]["part"] == part
    assert report["error"]["environment"]["log"] == str(log)
    assert (state / "runs" / NAME / "report.md").read_text().startswith("# mlops-edge run: ERROR")
    time.sleep(0.5)
    assert orphans_of(state) == [], "processes of the run's state directory are left"
    return report


def test_endpoint_killed_mid_run(tmp_path: Path, cdk_assembly: Any) -> None:
    def endpoint_pid(state: Path) -> int:
        return int(json.loads((state / "cloud" / "endpoint.json").read_text())["pid"])

    result, state = _run_and_kill(tmp_path, cdk_assembly, endpoint_pid)
    _check(result, state, "endpoint", state.resolve() / "cloud" / "endpoint.log")


def test_device_killed_mid_run(tmp_path: Path, cdk_assembly: Any) -> None:
    thing = "mlops-edge-device-01"

    def device_pid(state: Path) -> int:
        return int((state / "devices" / thing / "core.pid").read_text().split()[0])

    result, state = _run_and_kill(tmp_path, cdk_assembly, device_pid)
    report = _check(result, state, f"device {thing}", state.resolve() / "devices" / thing / "device.log")
    assert report["error"]["environment"]["exit_code"] == -signal.SIGKILL
