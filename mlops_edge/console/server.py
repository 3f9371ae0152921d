"""Serving the console: uvicorn on 127.0.0.1, the URL printed and written to a 0600 runtime file.

``serve`` runs in the foreground until SIGINT/SIGTERM. ``ConsoleProcess`` starts ``mlops-edge
console`` as a child (what `mlops-edge run --keep` and `mlops-edge local up` do), waits for its
runtime file, and stops it by PID.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PORT", "ConsoleProcess", "ConsoleSettings", "bind", "serve"]

#: The port asked for first; when it is taken, any free one.
DEFAULT_PORT = 8350
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ConsoleSettings:
    port: int = DEFAULT_PORT
    open_browser: bool = True
    runtime_file: Path | None = None
    example_input: Path | None = None
    poll_s: float = 0.5


def bind(port: int) -> socket.socket:
    """A listening socket on the loopback address; the default port falls back to a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or port != DEFAULT_PORT:
            sock.close()
            raise
        sock.bind((HOST, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _write_runtime_file(path: Path, info: Mapping[str, Any]) -> None:
    """The URL (with its token) for other tools, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def serve(
    settings: ConsoleSettings,
    *,
    find_state_machine: Callable[[Any], str],
    echo: Callable[[str], None] = print,
) -> None:
    """Build the app and serve it until SIGINT/SIGTERM."""
    import uvicorn

    from mlops_edge.console.app import create_app
    from mlops_edge.console.auth import new_token
    from mlops_edge.console.backend import Backend
    from pipeline.aws import client
    from pipeline.config import example_input
    from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

    sock = bind(settings.port)
    port = sock.getsockname()[1]
    token = new_token()
    cdk_json = Path(__file__).resolve().parents[2] / "cdk.json"
    context = load_cdk_json_context(cdk_json) if cdk_json.exists() else {}
    config = EdgeConfig.from_context(context.get)
    backend = Backend(
        client,
        find_state_machine=find_state_machine,
        model_package_group=config.model_package_group_name,
        component_prefix=config.component_prefix,
    )
    example_path = settings.example_input

    def example() -> dict[str, Any]:
        return json.loads(example_path.read_text()) if example_path else example_input()

    app = create_app(backend, token=token, port=lambda: port, example_input=example, poll_s=settings.poll_s)
    url = f"http://{HOST}:{port}/executions?token={token}"
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="on")
    )
    if settings.runtime_file is not None:
        _write_runtime_file(settings.runtime_file, {"url": url, "port": port, "pid": os.getpid()})
    echo(f"console at {url}")
    if settings.open_browser:
        with contextlib.suppress(Exception):
            webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    finally:
        if settings.runtime_file is not None:
            with contextlib.suppress(FileNotFoundError):
                settings.runtime_file.unlink()


class ConsoleProcess:
    """``mlops-edge console`` as a child process of a tool that keeps an environment running."""

    def __init__(
        self,
        runtime_file: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        args: Sequence[str] = (),
    ) -> None:
        self.runtime_file = runtime_file
        self.env = dict(os.environ if env is None else env)
        self.port = port
        self.args = list(args)  # more `mlops-edge console` options (--example-input, --state-machine)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, *, timeout_s: float = 20.0, log: Path | None = None) -> str:
        """Start it and return its URL once it listens."""
        self.runtime_file.unlink(missing_ok=True)
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        command = [sys.executable, "-m", "mlops_edge.main", "console", "--no-browser"]
        command += ["--port", str(self.port), "--runtime-file", str(self.runtime_file), *self.args]
        self.process = subprocess.Popen(
            command, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
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
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
