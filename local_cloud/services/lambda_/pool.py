"""Warm worker processes per function version: cold start once, then reuse; kill on timeout/crash."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
MAX_WORKERS_PER_FUNCTION = 4  # concurrent executions of one function version (2-core machines)


class WorkerTimeout(Exception):
    """The invocation ran past the function's timeout; the worker was killed."""


class WorkerDied(Exception):
    """The worker process exited mid-invocation (``sys.exit``, segfault, OOM...)."""

    def __init__(self, returncode: int | None, stderr: str) -> None:
        super().__init__(f"exit status {returncode}")
        self.returncode = returncode
        self.stderr = stderr


@dataclass(eq=False)
class Worker:
    """One subprocess; responses arrive through a reader thread so waits can have a deadline."""

    key: str
    process: subprocess.Popen[str]
    log_stream: str
    responses: queue.Queue[str | None] = field(default_factory=queue.Queue)
    cold: bool = True
    #: its init (handler import) ended: until then no invocation can be running in it
    ready: bool = False

    def start_reader(self) -> None:
        def _read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.responses.put(line)
            self.responses.put(None)

        threading.Thread(target=_read, daemon=True, name=f"lambda-reader-{self.process.pid}").start()

    def _next_line(self, timeout: float) -> str:
        """The worker's next stdout line; a timeout kills it, an exit reports how it died."""
        try:
            line = self.responses.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerTimeout() from None
        if line is None:
            self.process.wait(timeout=5)
            raise WorkerDied(self.process.returncode, "")
        return line

    def wait_ready(self, timeout: float) -> None:
        """Wait for the end of the init phase (handler module imported), bounded like Lambda's."""
        self._next_line(timeout)
        self.ready = True

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        # Lambda's init phase has a 10 s limit, but an init that runs longer is not an error: it is
        # retried within the first invoke and counted against the function's timeout ("suppressed
        # init"). So a cold worker's import and the invoke share the function's timeout here.
        if self.cold:
            started = time.monotonic()
            self.wait_ready(timeout)
            timeout = max(0.001, timeout - (time.monotonic() - started))
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(self.process.poll(), "") from exc
        line = self._next_line(timeout)
        self.cold = False
        return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill by PID (the worker's own process group: the handler may have started children)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


class WorkerPool:
    """Idle workers keyed by function version; a busy function gets extra workers (Map states)."""

    def __init__(self, log_dir: Path, max_per_function: int = MAX_WORKERS_PER_FUNCTION) -> None:
        self._idle: dict[str, list[Worker]] = {}
        self._all: set[Worker] = set()
        self._lock = threading.Condition()
        self._starting: dict[str, int] = {}  # workers being spawned, counted against the cap
        self.max_per_function = max_per_function
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)

    def _count(self, key: str) -> int:
        return sum(1 for w in self._all if w.key == key) + self._starting.get(key, 0)

    def acquire(self, key: str, env: dict[str, str], cwd: Path, log_stream: str) -> Worker:
        """An idle worker of this function version, else a new one; at the per-function cap, wait
        for one to be released (a wide Map must not start dozens of interpreters on 2 cores)."""
        with self._lock:
            while True:
                idle = self._idle.get(key, [])
                while idle:
                    worker = idle.pop()
                    if worker.alive():
                        return worker
                    self._all.discard(worker)
                if self._count(key) < self.max_per_function:
                    self._starting[key] = self._starting.get(key, 0) + 1
                    break
                self._lock.wait(timeout=1.0)
        try:
            return self._spawn(key, env, cwd, log_stream)
        finally:
            with self._lock:
                self._starting[key] -= 1
                self._lock.notify_all()

    def _spawn(self, key: str, env: dict[str, str], cwd: Path, log_stream: str) -> Worker:
        stderr = open(self.log_dir / "workers.log", "a")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=str(cwd),
            env={**env, "AWS_LAMBDA_LOG_STREAM_NAME": log_stream},
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        stderr.close()
        worker = Worker(key=key, process=process, log_stream=log_stream)
        worker.start_reader()
        with self._lock:
            self._all.add(worker)
        return worker

    def counts(self) -> dict[str, int]:
        """Running workers and how many wait warm (idle, handler loaded or loading) for the next
        invoke: the health report's figures."""
        with self._lock:
            workers = sum(1 for w in self._all if w.alive())
            warm = sum(1 for idle in self._idle.values() for w in idle if w.alive())
            return {"workers": workers, "warm": warm, "busy": workers - warm}

    def has_idle(self, key: str) -> bool:
        with self._lock:
            return any(w.alive() for w in self._idle.get(key, []))

    def release(self, worker: Worker) -> None:
        with self._lock:
            if worker.alive():
                self._idle.setdefault(worker.key, []).append(worker)
            else:
                self._all.discard(worker)
            self._lock.notify_all()

    def discard(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self._lock.notify_all()

    def retire_others(self, function_prefix: str, keep_key: str) -> None:
        """Stop idle workers of older versions of a function (code or configuration changed)."""
        with self._lock:
            stale = [k for k in self._idle if k.startswith(function_prefix) and k != keep_key]
            workers = [w for k in stale for w in self._idle.pop(k)]
        for worker in workers:
            self.discard(worker)

    def stop(self) -> None:
        with self._lock:
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        deadline = time.monotonic() + 2
        for worker in workers:
            if not worker.ready:  # still importing its handler (a pre-warm): nothing to finish
                worker.kill()
            elif worker.process.stdin:
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()
        for worker in workers:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
