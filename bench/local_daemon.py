"""The detached local cloud's figures (issue 14): `local up --detach` until healthy, `local status`,
the health endpoint, `local exec -- true`, and `local stop` until no process of it remains.

Each round runs the real CLI (`python -m mlops_edge.main local ...`) in a fresh state directory on
ephemeral ports (endpoint and broker), as a user would on the default ones. Prints a table; ``--json PATH`` writes the
figures (default bench/results/local_daemon.json). Targets: up --detach <= 10 s, status and the
health check <= 1 s, stop <= 10 s, on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local_cloud.ports import free_port  # noqa: E402
from mlops_edge.environment import processes  # noqa: E402

CLI = [sys.executable, "-m", "mlops_edge.main", "local"]


def _timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, cwd=ROOT)
    return time.perf_counter() - started, done


def one_round(state: Path, console: bool) -> dict[str, Any]:
    port = free_port()
    flags = ["--state-dir", str(state)]
    # not the default ports: a user's own cloud may hold them
    ports = ["--port", str(port), "--mqtt-port", str(free_port())]
    up_s, up = _timed("up", "--detach", *flags, *ports, *([] if console else ["--no-console"]))
    if up.returncode != 0:
        raise SystemExit(f"local up --detach failed: {up.stderr}")
    record = json.loads((state / "local.json").read_text())
    tree = [(record["pid"], record["ticks"]), *processes.descendants(record["pid"])]
    health_s = []
    for _ in range(5):
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_mlops_edge/health", timeout=10) as response:
            json.loads(response.read())
        health_s.append(time.perf_counter() - started)
    status_s, status = _timed("status", *flags, "-o", "json")
    exec_s, _ = _timed("exec", *flags, "--", "true")
    stop_s, _ = _timed("stop", *flags)
    left = [pid for pid, ticks in tree if processes.alive(pid, ticks)]
    return {
        "up_detach_s": up_s,
        "health_first_s": health_s[0],
        "health_warm_s": min(health_s[1:]),
        "status_s": status_s,
        "status_exit": status.returncode,
        "exec_true_s": exec_s,
        "stop_s": stop_s,
        "processes": len(tree),
        "left_after_stop": len(left),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-console", action="store_true", help="without the web console")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "local_daemon.json")
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            rounds.append(one_round(Path(tmp) / f"s{i}", console=not args.no_console))
    keys = [k for k in rounds[0] if k.endswith("_s")]
    summary = {k: {"min": min(r[k] for r in rounds), "max": max(r[k] for r in rounds)} for k in keys}
    print(f"{'figure':<16} {'min':>8} {'max':>8}")
    for key, figures in summary.items():
        print(f"{key:<16} {figures['min']:>8.3f} {figures['max']:>8.3f}")
    print(
        f"processes per cloud: {rounds[0]['processes']}; left after stop: {sum(r['left_after_stop'] for r in rounds)}"
    )
    load = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"rounds": rounds, "summary": summary, "load_1min": load}, indent=1) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
