"""Serving the console: uvicorn on 127.0.0.1, the URL printed and written to a 0600 runtime file.

``serve`` runs in the foreground until SIGINT/SIGTERM. (`mlops-edge run --keep` and `mlops-edge
local up` start the CLI as a child: ``mlops_edge.environment.console_process``.)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_PORT", "ConsoleSettings", "bind", "serve"]

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
    find_bucket: Callable[[Any], str] | None = None,
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
    from pipeline.config.function_env import Settings

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
        find_bucket=find_bucket,
        state_prefix=Settings.from_env().state_prefix,
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
