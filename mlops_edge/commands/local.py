"""`mlops-edge local`: the embedded local cloud as a service: `up` (foreground or ``--detach``),
`status`, `stop`, `logs`, and `env` / `exec` to reach it without changing the shell.

The commands parse options and forward to plain functions in
:mod:`mlops_edge.environment.local_daemon` and :mod:`mlops_edge.environment.envfile`; heavy imports
happen inside them so `mlops-edge --help` stays instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import click

#: Kept in step with local_daemon's DEFAULT_PORT, PORT_ENV, DEFAULT_MQTT_PORT and MQTT_PORT_ENV
#: (not imported: --help stays light; a unit test holds them equal). Why these numbers: there.
DEFAULT_PORT = 4610
PORT_ENV = "MLOPS_EDGE_LOCAL_PORT"
DEFAULT_MQTT_PORT = 4611
MQTT_PORT_ENV = "MLOPS_EDGE_LOCAL_MQTT_PORT"

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".local"),
    show_default=True,
    help="Where the local cloud keeps its state (survives restarts), its record and its logs.",
)


def run_local_up(
    state_dir: Path,
    *,
    echo: Any = click.echo,
    stop: threading.Event | None = None,
    console: bool = True,
    port: int = 0,
    mqtt_port: int = 0,
    detached: bool = False,
) -> float:
    """Start the local cloud (and the web console beside it), print how to use them, block until
    ``stop`` is set or SIGINT/SIGTERM; stop everything by PID. Returns the cloud's start-up time.

    ``port`` and ``mqtt_port`` 0 (the defaults of this function, for tests and tools) take
    ephemeral ports; the `local up` command passes its fixed defaults."""
    from mlops_edge.environment.local_daemon import LocalCloudProblem, serve

    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        return serve(
            state_dir,
            port=port,
            mqtt_port=mqtt_port,
            echo=echo,
            stop=stop,
            console=console,
            detached=detached,
        )
    except LocalCloudProblem as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        for sig, handler in previous.items():  # a caller's own handlers (a test runner's) come back
            signal.signal(sig, handler)


@click.group()
def local() -> None:
    """Start, inspect and reach the embedded local cloud."""


@local.command()
@state_dir_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    envvar=PORT_ENV,
    show_default=True,
    help=f"The AWS endpoint's port on 127.0.0.1 (also ${PORT_ENV}); 0 takes any free port.",
)
@click.option(
    "--mqtt-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_MQTT_PORT,
    envvar=MQTT_PORT_ENV,
    show_default=True,
    help=f"The MQTT broker's port (mTLS) on 127.0.0.1 (also ${MQTT_PORT_ENV}); 0 takes any free port.",
)
@click.option("--console/--no-console", default=True, show_default=True, help="Serve the web console too.")
@click.option(
    "--detach", "-d", is_flag=True, help="Run in the background; return once healthy (stop: local stop)."
)
@click.option("--in-background", is_flag=True, hidden=True)  # set by --detach for its child
def up(state_dir: Path, port: int, mqtt_port: int, console: bool, detach: bool, in_background: bool) -> None:
    """Run the local cloud: AWS endpoint + MQTT broker (+ web console), until Ctrl-C or `local stop`.

    Both listen on fixed ports (--port, --mqtt-port), so exported settings and MQTT clients'
    configuration stay valid across restarts. With --detach it runs in the background (logs:
    `local logs`), and the command returns once the cloud answers its health check."""
    if not detach:
        run_local_up(state_dir, console=console, port=port, mqtt_port=mqtt_port, detached=in_background)
        return
    from mlops_edge.environment.local_daemon import LocalCloudProblem, start_detached

    try:
        cloud = start_detached(state_dir, port=port, mqtt_port=mqtt_port, console=console)
    except LocalCloudProblem as exc:
        raise click.ClickException(str(exc)) from exc
    flag = _flag(state_dir)
    click.echo(
        f"local cloud running in the background: PID {cloud.pid}, {cloud.endpoint_url}, MQTT {cloud.mqtt_url}"
    )
    click.echo(f"  status  mlops-edge local status{flag}")
    click.echo(f"  logs    mlops-edge local logs -f{flag}")
    click.echo(f"  stop    mlops-edge local stop{flag}")
    click.echo(f"  use it  mlops-edge local exec{flag} -- aws stepfunctions list-state-machines")
    click.echo(
        f'          eval "$(mlops-edge local env{flag})"   (undo: eval "$(mlops-edge local env --unset{flag})")'
    )


def _flag(state_dir: Path) -> str:
    return "" if state_dir.resolve() == Path(".local").resolve() else f" --state-dir {state_dir}"


def _not_running(state_dir: Path) -> str:
    return f"no local cloud runs for {state_dir} (start one: mlops-edge local up --detach{_flag(state_dir)})"


@local.command()
@state_dir_option
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def status(ctx: click.Context, state_dir: Path, output: str) -> None:
    """Is the local cloud up? Each service's health. Exit 0 healthy, 1 not running, 2 unhealthy."""
    from mlops_edge.environment.envfile import running
    from mlops_edge.environment.local_daemon import health

    cloud = running(state_dir)
    report = health(cloud.endpoint_url) if cloud is not None else None
    healthy = report is not None and report.get("status") == "healthy"
    code = 0 if healthy else 1 if cloud is None else 2
    if output == "json":
        about = cloud.as_dict() if cloud is not None else {"state_dir": str(state_dir.resolve())}
        click.echo(json.dumps({"running": cloud is not None, "healthy": healthy, **about, "health": report}))
        ctx.exit(code)
    if cloud is None:
        click.echo(_not_running(state_dir), err=True)
        ctx.exit(code)
    mode = "detached" if cloud.detached else "in a terminal"
    click.echo(f"local cloud {'healthy' if healthy else 'NOT healthy'}: PID {cloud.pid} ({cloud.by}, {mode})")
    click.echo(f"  since {cloud.started_at}; state {cloud.state_dir}")
    click.echo(f"  AWS endpoint {cloud.endpoint_url}; MQTT {cloud.mqtt_url or '(none recorded)'} (mTLS)")
    if report is None:
        click.echo(f"  {cloud.endpoint_url} does not answer its health check; see mlops-edge local logs")
        ctx.exit(code)
    for line in _service_lines(report.get("services", {})):
        click.echo(line)
    ctx.exit(code)


def _service_lines(services: dict[str, Any]) -> list[str]:
    """One line per service of the health report."""
    lines = []
    for name, info in services.items():
        state = "up  " if info.get("up") else "DOWN"
        details = {k: v for k, v in info.items() if k != "up" and v not in (None, {}, "")}
        text = ", ".join(f"{k}={v}" for k, v in details.items())
        lines.append(f"  {name:<9} {state} {text}")
    return lines


@local.command()
@state_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=20.0,
    show_default=True,
    help="Seconds to wait before SIGKILL.",
)
def stop(state_dir: Path, timeout: float) -> None:
    """Stop the local cloud: SIGTERM, wait, SIGKILL what is left (endpoint, broker, workers, console)."""
    from mlops_edge.environment.local_daemon import stop as stop_cloud

    done = stop_cloud(state_dir, timeout=timeout)
    if done is None:
        click.echo(_not_running(state_dir))
        return
    how = f"; SIGKILLed {', '.join(map(str, done.killed))}" if done.killed else ""
    click.echo(
        f"local cloud stopped (PID {done.pid} and {len(done.processes) - 1} children) in {done.seconds:.1f}s{how}"
    )


@local.command()
@state_dir_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing what is appended, while the cloud runs.")
@click.option("--tail", "-n", type=click.IntRange(min=0), default=None, help="Only the last N lines first.")
@click.option(
    "--source",
    type=click.Choice(["endpoint", "up", "broker", "lambda"]),
    default="endpoint",
    show_default=True,
    help="endpoint: the AWS endpoint's log; up: what `local up` printed; broker: mosquitto; lambda: workers' stderr.",
)
def logs(state_dir: Path, follow: bool, tail: int | None, source: str) -> None:
    """Print the local cloud's logs (-f to follow, --tail N for the last lines)."""
    from mlops_edge.environment.envfile import running
    from mlops_edge.environment.local_daemon import follow as follow_log
    from mlops_edge.environment.local_daemon import log_path, tail_lines

    path = log_path(state_dir, source)
    if not path.exists():
        why = "" if running(state_dir) is not None else f"; {_not_running(state_dir)}"
        raise click.ClickException(f"no {source} log at {path} yet{why}")
    lines, offset = tail_lines(path, tail)
    for line in lines:
        click.echo(line)
    if follow:
        holder = running(state_dir)
        if holder is None:
            click.echo(f"({_not_running(state_dir)}: nothing more will come)", err=True)
            return
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends following, not an error
            follow_log(path, offset, click.echo, lambda: running(state_dir) is not None)


def _running_or_fail(state_dir: Path) -> Any:
    from mlops_edge.environment.envfile import running

    cloud = running(state_dir)
    if cloud is None:
        raise click.ClickException(_not_running(state_dir))
    return cloud


@local.command()
@state_dir_option
@click.option("--unset", is_flag=True, help="Print the lines that put the shell back as it was.")
def env(state_dir: Path, unset: bool) -> None:
    """Print `export` lines for the local cloud: eval "$(mlops-edge local env)".

    They also remember each variable's earlier value, so eval "$(mlops-edge local env --unset)"
    restores the shell (your own AWS_PROFILE, region, credentials) exactly."""
    from mlops_edge.environment.envfile import running, shell_exports, shell_unset

    if unset:
        cloud = running(state_dir)
        click.echo(shell_unset(os.environ, cloud.env if cloud is not None else None))
        return
    click.echo(shell_exports(_running_or_fail(state_dir), os.environ))


@local.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@state_dir_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, state_dir: Path, command: tuple[str, ...]) -> None:
    """Run one COMMAND against the local cloud (endpoint, credentials, region, AWS profile
    mlops-edge-local); your shell's environment stays as it is. Example:

        mlops-edge local exec -- aws stepfunctions list-state-machines
    """
    import subprocess

    from mlops_edge.environment.envfile import exec_environ

    cloud = _running_or_fail(state_dir)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C reaches the command (same process group); we only wait for it to finish
        signal.signal(signal.SIGINT, lambda *_: None)
    try:
        child = subprocess.Popen(list(command), env=exec_environ(cloud, os.environ))
    except (FileNotFoundError, PermissionError) as exc:
        problem = click.ClickException(
            f"{command[0]}: {'command not found' if isinstance(exc, FileNotFoundError) else 'permission denied'}"
        )
        problem.exit_code = 127 if isinstance(exc, FileNotFoundError) else 126  # as a shell says
        raise problem from None
    code = child.wait()
    ctx.exit(128 - code if code < 0 else code)
