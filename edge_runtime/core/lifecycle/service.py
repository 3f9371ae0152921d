"""One component's lifecycle: install, then startup or run, supervised; shutdown on stop.

Mirrors the nucleus GenericExternalService: ``Run`` only when there is no ``Startup``; a component
with neither is FINISHED once installed; a failing step puts it in ERRORED and the core retries,
until :data:`MAX_ERRORS` errors make it BROKEN. Each step runs ``sh -c`` in the component's work
directory, in its own process group (so stopping kills everything it started), logging to the
component's log file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .states import MAX_ERRORS, State, check_transition
from .steps import Step, install_fault, shell

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.3
KILL_GRACE_S = 5.0


class ComponentService:
    """Runs and supervises one component version."""

    def __init__(
        self,
        name: str,
        version: str,
        *,
        steps: dict[str, Step],
        setenv: dict[str, str],
        env: dict[str, str],
        work_dir: Path,
        log_path: Path,
        on_state: Callable[[str, State], None] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.steps = steps
        self.setenv = setenv
        self.env = env
        self.work_dir = Path(work_dir)
        self.log_path = Path(log_path)
        self.state = State.NEW
        self.errors = 0
        self.status_reason = ""
        self._on_state = on_state
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._procs: set[subprocess.Popen[bytes]] = set()  # every live step process
        self._run_proc: subprocess.Popen[bytes] | None = None
        self._since = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- state ----------------------------------------------------------------------------------
    def _set(self, new: State, reason: str = "") -> None:
        with self._cond:
            if self.state == State.STOPPING and new != State.INSTALLED:
                return  # the supervisor racing a stop: the stop wins
            check_transition(self.state, new)
            self.state = new
            self._since = time.monotonic()
            if reason:
                self.status_reason = reason
            self._cond.notify_all()
            if self._on_state:  # under the lock so observers see transitions in order
                self._on_state(self.name, new)
        self._log(f"state -> {new.value}{': ' + reason if reason else ''}")

    def wait_settled(self, timeout: float, stable_s: float = 0.0) -> State:
        """Wait until BROKEN, or RUNNING/FINISHED held for ``stable_s``; returns the state then.

        ``stable_s`` keeps a process that crashes right after it started from passing as RUNNING.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self.state == State.BROKEN:
                    return self.state
                if self.state.is_healthy_end and now - self._since >= stable_s:
                    return self.state
                if now >= deadline:
                    return self.state
                wait = deadline - now
                if self.state.is_healthy_end:
                    wait = min(wait, stable_s - (now - self._since))
                self._cond.wait(max(wait, 0.005))

    def report(self, state: str) -> None:
        """UpdateState from the component itself over IPC."""
        proc = self._run_proc
        if state == "ERRORED" and proc is not None:
            self.status_reason = "component reported ERRORED"
            self._kill(proc)  # the supervisor sees the exit and counts the error

    # -- running --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start supervising in a thread; returns at once."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._supervise, name=f"lifecycle-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shutdown step, then kill whatever the component still runs; leaves it INSTALLED/NEW."""
        self._stopping.set()
        started = self.state in (State.STARTING, State.RUNNING, State.FINISHED)
        if self.state != State.BROKEN:
            self._set(State.STOPPING)
        shutdown = self.steps.get("shutdown")
        if shutdown is not None and started:
            self._run_step(shutdown)
        for proc in list(self._procs):
            self._kill(proc)
        if self._thread is not None:
            self._thread.join(timeout=KILL_GRACE_S + 5)
        if self.state == State.STOPPING:
            self._set(State.INSTALLED)

    def _supervise(self) -> None:
        try:
            self._lifecycle()
        except Exception as exc:  # a bug here must show in the log and the state, not vanish
            log.exception("lifecycle of %s failed", self.name)
            self._log(f"lifecycle crashed: {exc!r}")

    def _lifecycle(self) -> None:
        installed = False
        while not self._stopping.is_set():
            if not installed:
                install = self.steps.get("install")
                if install is not None and self._run_step(install) != 0:
                    if self._error(f"install failed ({self._last_reason})"):
                        return
                    continue
                if self._stopping.is_set():
                    return
                self._set(State.INSTALLED)
                installed = True
            if "startup" in self.steps:
                self._set(State.STARTING)
                if self._run_step(self.steps["startup"]) != 0:
                    if self._stopping.is_set() or self._error(f"startup failed ({self._last_reason})"):
                        return
                    continue
                self._set(State.RUNNING)
                self._stopping.wait()
                return
            if "run" in self.steps:
                self._set(State.STARTING)
                proc = self._spawn(self.steps["run"])
                if proc is None:
                    if self._error("run could not start"):
                        return
                    continue
                self._run_proc = proc
                self._set(State.RUNNING)
                code = proc.wait()
                self._run_proc = None
                self._procs.discard(proc)
                self._log(f"run exited with {code}")
                if self._stopping.is_set():
                    return
                if code == 0:
                    self._set(State.FINISHED)
                    self._stopping.wait()
                    return
                if self._error(f"run exited with code {code}"):
                    return
                continue
            self._set(State.FINISHED)
            self._stopping.wait()
            return

    def _error(self, reason: str) -> bool:
        """Count an error; True when the component is now BROKEN (stop retrying)."""
        if self._stopping.is_set():
            return True
        self.errors += 1
        self._set(State.ERRORED, reason)
        if self.errors >= MAX_ERRORS:
            self._set(State.BROKEN, f"{reason}; {self.errors} errors")
            return True
        self._stopping.wait(RETRY_DELAY_S)
        if self._stopping.is_set():
            return True
        # a failed install is retried from NEW, a failed start from INSTALLED
        self._set(State.NEW if reason.startswith("install failed") else State.INSTALLED)
        return False

    # -- processes ------------------------------------------------------------------------------
    _last_reason = ""

    def _step_env(self, step: Step) -> dict[str, str]:
        env = dict(self.env)
        env.update(self.setenv)
        env.update(step.setenv)
        return env

    def _spawn(self, step: Step) -> subprocess.Popen[bytes] | None:
        if step.skipped():
            self._log(f"{step.name}: skipped ({step.skipif})")
            return None
        self._log(f"{step.name}: {step.script}")
        try:
            out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        except OSError:
            return None
        try:
            proc = subprocess.Popen(
                [shell(), "-c", step.script],
                cwd=self.work_dir,
                env=self._step_env(step),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            self._log(f"{step.name}: cannot start: {exc}")
            return None
        finally:
            out.close()
        self._procs.add(proc)
        if self._stopping.is_set() and step.name != "shutdown":
            self._kill(proc)  # a stop raced the spawn
        return proc

    def _run_step(self, step: Step) -> int:
        """Run a step to completion within its timeout; 0 on success (or skipped)."""
        if step.skipped():
            self._log(f"{step.name}: skipped ({step.skipif})")
            return 0
        fault = install_fault(self.name) if step.name == "install" else None
        if fault is not None:
            self._last_reason = fault
            self._log(f"{step.name}: not run, {fault}")
            return 1
        proc = self._spawn(step)
        if proc is None:
            self._last_reason = "could not start"
            return -1
        try:
            code = proc.wait(timeout=step.timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            self._last_reason = f"timed out after {step.timeout:g}s"
            self._log(f"{step.name}: {self._last_reason}")
            code = -1
        else:
            self._last_reason = f"exit code {code}"
            self._log(f"{step.name}: exit code {code}")
        finally:
            self._procs.discard(proc)
        return code

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the step's process group, SIGKILL after a grace period."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 2.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group

    def _log(self, line: str) -> None:
        with contextlib.suppress(OSError):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as fh:
                fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{self.name} {self.version}] {line}\n")
