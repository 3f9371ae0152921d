"""`mlops-edge console` as a child process of a tool that keeps an environment running.

`mlops-edge run --keep` and `mlops-edge local up` start it this way: by its CLI (the console sits
beside the environment, not below it), with this process's AWS and MQTT environment, waiting for
the 0600 runtime file it writes with its URL, and stopping it by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["ConsoleProcess", "start_console"]


class ConsoleProcess:
    """Start with :meth:`start` (returns the URL, token included), stop with :meth:`stop`."""

    def __init__(
        self,
        runtime_file: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.runtime_file = runtime_file
        self.env = dict(os.environ if env is None else env)
        self.port = port  # None: the console's default (8350, or a free one when taken)
        self.args = list(args)  # more `mlops-edge console` options (--example-input, --state-machine)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, timeout_s: float = 20.0, log: Path | None = None) -> str:
        """Start it and return its URL once it listens."""
        self.runtime_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "mlops_edge.main", "console", "--no-browser"]
        if self.port is not None:
            command += ["--port", str(self.port)]
        command += ["--runtime-file", str(self.runtime_file), *self.args]
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        while not self.runtime_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the console did not start{f'; see {log}' if log else ''}")
            time.sleep(0.05)
        self.url = str(json.loads(self.runtime_file.read_text())["url"])
        return self.url

    def stop(self) -> None:
        """SIGTERM by PID (uvicorn shuts down gracefully), KILL if it has not gone in 10 s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_console(
    state_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    example_input: Path | None = None,
    log: Callable[[str], None] = print,
) -> ConsoleProcess | None:
    """The console beside a running environment, its URL printed; None (and why) if it failed.

    With ``env`` (default: this process's, where `run` put the local cloud's exports), its runtime
    file and log under ``state_dir``. A console that cannot start is reported, not fatal: the environment
    is still usable from the CLI.
    """
    args = ["--example-input", str(example_input)] if example_input and example_input.exists() else []
    console = ConsoleProcess(state_dir / "console.json", env=env, args=args)
    try:
        url = console.start(log=state_dir / "console.log")
    except (OSError, RuntimeError) as exc:
        log(f"console: not started ({exc})")
        return None
    log(f"console at {url}")
    return console
