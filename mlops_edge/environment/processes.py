"""Processes by PID, read from /proc: is this PID still the process we started, what are its children.

A pidfile outlives its process, and a PID is reused once the process is gone: so a recorded PID is
trusted only together with the start time the kernel gives the process (``/proc/<pid>/stat`` field
22), and a stop signals exactly the processes it found under the one it started, never a name.
Where /proc does not exist (not Linux) the checks fall back to ``kill(pid, 0)`` and an empty tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")


def start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None when unknown or gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its last ")"
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait() is missing
        return None
    return int(fields[19])


def alive(pid: int, ticks: int | None = None) -> bool:
    """Whether ``pid`` runs and, when ``ticks`` is given, is still the process that started then."""
    if pid <= 0:
        return False
    if PROC.is_dir():
        now = start_ticks(pid)
        return now is not None and (ticks is None or now == ticks)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every process below ``pid`` (children, their children...) as (PID, start ticks).

    A child that started its own session (the endpoint, mosquitto, Lambda workers do) is still a
    child by parent PID, so it is found here."""
    parents: dict[int, list[int]] = {}
    for entry in PROC.glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        ticks = start_ticks(child)
        if ticks is not None:
            found.append((child, ticks))
        todo += parents.get(child, [])
    return found


def signal_exact(pid: int, ticks: int | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process recorded; True when sent."""
    if not alive(pid, ticks):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        return True
    return False


def wait_gone(processes: list[tuple[int, int | None]], timeout: float) -> list[tuple[int, int | None]]:
    """Wait until none of ``processes`` runs any more; return those still running at the deadline."""
    deadline = time.monotonic() + timeout
    left = [(pid, ticks) for pid, ticks in processes if alive(pid, ticks)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [(pid, ticks) for pid, ticks in left if alive(pid, ticks)]
    return left


def kill_all(processes: list[tuple[int, int | None]]) -> list[int]:
    """SIGKILL each process that is still the one recorded; the PIDs that were killed."""
    return [pid for pid, ticks in processes if signal_exact(pid, ticks, signal.SIGKILL)]
