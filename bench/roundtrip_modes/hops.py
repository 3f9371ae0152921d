"""Hops mode: where one MQTT request's time goes, from syscall timestamps of every process.

``perf trace`` (Linux, root or ``perf_event_paranoid`` <= 1) records the reads and writes of the
load client, the broker, the core and the inference component while single requests go one at a
time, 20 ms apart; each request's first read/write in each process, in path order, marks a hop:

client write -> broker read -> broker write -> core read (TLS) -> core write (IPC socket) ->
component read -> component write -> core read (IPC socket) -> core write (TLS) -> client read.

Reads are taken at their end (when the data was there), writes at their start. Tracing adds a
few tens of microseconds to every traced syscall, so the hops are larger than untraced ones and
the total is compared with the client's own figure for the same requests; the split is what counts.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .cpu import Processes

SYSCALLS = "read,write,readv,writev,sendto,recvfrom,sendmsg,recvmsg"
_DONE = re.compile(
    r"^\s*([\d.]+) \(\s*([\d.]+) ms\): (\S+)/(\d+)\s+(?:\.\.\. \[continued\]: )?(\w+)\((?:fd: (\d+))?.*= (-?\d+)"
)
_STARTED = re.compile(r"^\s*([\d.]+) \(\s*\): (\S+)/(\d+) (\w+)\(fd: (\d+)")
HOPS = (
    "client -> broker",
    "broker: in -> out to the core",
    "broker -> core (TLS read)",
    "core: MQTT in -> IPC event written",
    "IPC event -> component read",
    "component: awsiotsdk + service + engine -> publish written",
    "component -> core (IPC read)",
    "core: IPC in -> MQTT publish written",
    "core -> broker -> client read",
    "total (first write to last read)",
)


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def run_hops(setup: Any, requester: Any, *, requests: int, workdir: Path) -> dict[str, Any]:
    """Trace ``requests`` single requests sent one at a time; the p50/p90 of each hop in microseconds."""
    if shutil.which("perf") is None:
        return {"error": "perf is not installed (linux-perf)"}
    requester.wait_until_serving()
    requester.closed_loop(50)
    procs = Processes(setup.broker_pid, setup.device.pid).find()
    roles = {"client": os.getpid(), "broker": procs["broker"].pid, "core": procs["core"].pid}
    roles["component"] = procs["inference component"].pid
    trace = workdir / "hops-trace.txt"
    pids = ",".join(str(p) for p in roles.values())
    perf = subprocess.Popen(
        ["perf", "trace", "-o", str(trace), "-p", pids, "-e", SYSCALLS], stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(2.0)  # perf attaches
        measured = []
        for i in range(requests):
            rid = f"hop-{i}"
            requester.send(rid, setup.rows[i % len(setup.rows)])
            with requester.answered:
                requester.answered.wait_for(lambda rid=rid: rid in requester.latencies, timeout=2)
            if rid in requester.latencies:
                measured.append(requester.latencies[rid])
            time.sleep(0.02)
        time.sleep(0.5)
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(10)
    owner = {tid: role for role, pid in roles.items() for tid in _threads(pid)}
    hops = _split(_events(trace, owner))
    out: dict[str, Any] = {"requests": requests, "traced": len(hops[HOPS[-1]])}
    out["client_p50_us"] = round(_pct([m * 1000 for m in measured], 50))
    out["hops_us"] = {
        name: {"p50": round(_pct(v, 50)), "p90": round(_pct(v, 90))} for name, v in hops.items()
    }
    return out


def _events(trace: Path, owner: dict[int, str]) -> list[tuple[float, str, str, int, int, str]]:
    """(time ms, role, "r"/"w", fd, bytes, syscall) of every successful read and write."""
    events, pending = [], {}
    for line in trace.read_text().splitlines():
        started = _STARTED.match(line)
        if started:  # a blocking call: its fd is on this line, its end on a "[continued]" one
            pending[int(started[3])] = int(started[5])
            continue
        m = _DONE.match(line)
        if not m:
            continue
        ts, dur, tid, call, fd, ret = float(m[1]), float(m[2]), int(m[4]), m[5], m[6], int(m[7])
        fd_no = int(fd) if fd is not None else pending.pop(tid, -1)
        if ret <= 0 or tid not in owner or ret == 8:  # 8 bytes: eventfd wake-ups between threads
            continue
        kind = "r" if call.startswith(("read", "recv")) else "w"
        events.append((ts + dur if kind == "r" else ts, owner[tid], kind, fd_no, ret, call))
    events.sort()
    return events


def _split(events: list[tuple[float, str, str, int, int, str]]) -> dict[str, list[float]]:
    """Cut the trace into requests (gaps over 8 ms) and each request into its hops."""
    ipc_fds = {e[3] for e in events if e[1] == "core" and e[5] == "recvfrom"}  # the IPC server's recv_into
    clusters: list[list[Any]] = [[]]
    for e in events:
        if clusters[-1] and e[0] - clusters[-1][-1][0] > 8.0:
            clusters.append([])
        clusters[-1].append(e)
    steps = (
        ("client", "w", None),
        ("broker", "r", None),
        ("broker", "w", None),
        ("core", "r", False),
        ("core", "w", True),
        ("component", "r", None),
        ("component", "w", None),
        ("core", "r", True),
        ("core", "w", False),
        ("client", "r", None),
    )
    hops: dict[str, list[float]] = {name: [] for name in HOPS}
    for cluster in clusters:
        marks: list[float] = []
        for role, kind, on_ipc in steps:
            after = marks[-1] if marks else -1.0
            mark = next(
                (
                    e[0]
                    for e in cluster
                    if e[0] >= after
                    and e[1] == role
                    and e[2] == kind
                    and (on_ipc is None or (e[3] in ipc_fds) == on_ipc)
                ),
                None,
            )
            if mark is None:
                break
            marks.append(mark)
        if len(marks) != len(steps):
            continue
        for name, (a, b) in zip(HOPS, itertools.pairwise(marks), strict=False):
            hops[name].append((b - a) * 1000.0)
        hops[HOPS[-1]].append((marks[-1] - marks[0]) * 1000.0)
    return hops


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(1, -(-len(ordered) * q // 100)) - 1]
