"""`mlops-edge local up`: run the embedded local cloud in the foreground until Ctrl-C.

The command parses options and forwards to :func:`run_local_up`, a plain function; heavy imports
happen inside it so `mlops-edge --help` stays instant.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click


def run_local_up(
    state_dir: Path, *, echo: Any = click.echo, stop: threading.Event | None = None, console: bool = True
) -> float:
    """Start the local cloud (and the web console beside it), print how to use them, block until
    ``stop`` is set or SIGINT/SIGTERM; stop everything by PID. Returns the cloud's start-up time."""
    import os

    from local_cloud import LocalCloud, LocalCloudError
    from mlops_edge.environment.console_process import start_console
    from mlops_edge.environment.envfile import CLOUD_SUBDIR, exports, write_env_file

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    cloud = LocalCloud(state_dir=state_dir / CLOUD_SUBDIR)
    web = None
    try:
        cloud.start()
    except LocalCloudError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        env = cloud.env()
        env_file = write_env_file(state_dir, env)
        ident = cloud.pipeline_identity
        echo(f"local cloud ready in {cloud.startup_seconds:.2f}s (state: {cloud.state_dir})")
        echo(f"  AWS endpoint   {cloud.endpoint_url}")
        echo(f"  MQTT endpoint  mqtts://{cloud.mqtt.host}:{cloud.mqtt.port} (mTLS)")
        echo(f"  CA             {ident.ca_path}")
        echo(f"  pipeline cert  {ident.cert_path}")
        echo(f"  pipeline key   {ident.key_path}")
        echo(f"  devices        {cloud.state_dir / 'mqtt' / 'devices'}/<thing>/{{cert.pem,private.key}}")
        echo(f"  logs           {cloud.state_dir / 'endpoint.log'}")
        echo("")
        echo(f"# in another shell: source {env_file}")
        echo(exports(env))
        echo("")
        web = start_console(state_dir, env={**os.environ, **env}, log=echo) if console else None
        echo("Ctrl-C stops everything.")
        while not stop.wait(0.5):
            if cloud.process is None or cloud.process.poll() is not None:
                raise click.ClickException(f"the endpoint exited; see {cloud.state_dir / 'endpoint.log'}")
        return cloud.startup_seconds
    finally:
        if web is not None:
            web.stop()
        cloud.stop()
        echo("local cloud stopped")


@click.group()
def local() -> None:
    """Start and inspect the embedded local cloud."""


@local.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".local"),
    show_default=True,
    help="Where the local cloud keeps its state (survives restarts).",
)
@click.option("--console/--no-console", default=True, show_default=True, help="Serve the web console too.")
def up(state_dir: Path, console: bool) -> None:
    """Run the local cloud in the foreground: AWS endpoint + MQTT broker (+ web console), until Ctrl-C."""
    run_local_up(state_dir, console=console)
