"""The local cloud that stays up: `local up` in the foreground or detached, `status`, `stop`, `logs`.

One process holds a state directory's local cloud: `mlops-edge local up`, run in a terminal or, with
``--detach``, started by the same command as a child in its own session whose output goes to
``<state dir>/local.log``. Either way it records itself in ``<state dir>/local.json``
(:mod:`envfile`) once the cloud answers, and removes the record when it stops; so `status`, `stop`,
`env` and `exec` work the same for both. Its children (the endpoint, which owns mosquitto and the
Lambda workers, and the web console) are stopped by the holder on SIGTERM; `stop` then checks by
PID that none of the processes it found under the holder remains, and SIGKILLs any that does.

The default ports are fixed (:data:`DEFAULT_PORT` for the AWS endpoint, :data:`DEFAULT_MQTT_PORT`
for the broker) so that a shell, a script, an AWS profile or an MQTT client's configuration can
name them across restarts; `mlops-edge run` and the tests keep ephemeral ports, so any number of
them run beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_edge.environment import processes
from mlops_edge.environment.envfile import (
    AWS_CONFIG,
    CLOUD_SUBDIR,
    PROFILE,
    Running,
    clear_env_file,
    running,
    write_env_file,
)

#: `local up`'s port unless --port or $MLOPS_EDGE_LOCAL_PORT says otherwise. Not LocalStack's
#: (4566, and 4510-4559 for its external services), so both run side by side; below Linux's
#: ephemeral range (32768-60999), so no run or test that takes an ephemeral port lands on it.
DEFAULT_PORT = 4610
PORT_ENV = "MLOPS_EDGE_LOCAL_PORT"
#: The broker's port (mTLS) unless --mqtt-port or $MLOPS_EDGE_LOCAL_MQTT_PORT says otherwise: next
#: to the endpoint's, for the same reasons (below the ephemeral range, outside LocalStack's ports,
#: no common service on it). Not MQTT's own 8883 (or 1883): that is where a system mosquitto
#: or another broker usually listens, and a client left on the default would reach it, not us.
DEFAULT_MQTT_PORT = 4611
MQTT_PORT_ENV = "MLOPS_EDGE_LOCAL_MQTT_PORT"
#: What the holder prints (and, detached, what `local logs --source up` shows).
LOG_FILE = "local.log"
#: How long `local up` lets the endpoint start; `--detach` waits a little longer for the whole.
STARTUP_TIMEOUT_S = 150.0
HEALTH_PATH = "/_mlops_edge/health"
#: The logs `local logs --source` chooses from, under the state directory.
LOG_SOURCES = {
    "endpoint": f"{CLOUD_SUBDIR}/endpoint.log",
    "up": LOG_FILE,
    "broker": f"{CLOUD_SUBDIR}/mqtt/mosquitto.log",
    "lambda": f"{CLOUD_SUBDIR}/lambda/logs/workers.log",
}


class LocalCloudProblem(RuntimeError):
    """Something the user can act on; the message says what and what to do."""


class AlreadyRunning(LocalCloudProblem):
    def __init__(self, cloud: Running) -> None:
        super().__init__(
            f"a local cloud already runs for {cloud.state_dir}: PID {cloud.pid} ({cloud.by}), "
            f"{cloud.endpoint_url}; stop it first: mlops-edge local stop --state-dir {cloud.state_dir}"
        )
        self.cloud = cloud


def port_taken_message(port: int, *, mqtt: bool = False) -> str:
    """One line: which port, who may hold it, and the option (or variable) that picks another."""
    if mqtt:
        return (
            f"MQTT port {port} on 127.0.0.1 is already in use by another process (another local "
            f"cloud? a mosquitto?); stop it, or choose another port: mlops-edge local up --mqtt-port N "
            f"(or set {MQTT_PORT_ENV})"
        )
    return (
        f"port {port} on 127.0.0.1 is already in use by another process (another local cloud? "
        f"LocalStack?); stop it, or choose another port: mlops-edge local up --port N "
        f"(or set {PORT_ENV})"
    )


def check_ports(port: int, mqtt_port: int) -> None:
    """Refuse, before anything starts, two fixed ports that cannot both be ours (0 = any free)."""
    from local_cloud import port_free

    if port and port == mqtt_port:
        raise LocalCloudProblem(
            f"the AWS endpoint and the MQTT broker cannot share port {port}: "
            f"give them two (mlops-edge local up --port N --mqtt-port M)"
        )
    if port and not port_free(port):
        raise LocalCloudProblem(port_taken_message(port))
    if mqtt_port and not port_free(mqtt_port):
        raise LocalCloudProblem(port_taken_message(mqtt_port, mqtt=True))


def health(endpoint_url: str, timeout: float = 15.0) -> dict[str, Any] | None:
    """The endpoint's health report, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}{HEALTH_PATH}", timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def serve(
    state_dir: Path,
    *,
    port: int,
    mqtt_port: int = 0,
    echo: Callable[[str], Any],
    stop: threading.Event,
    console: bool = True,
    detached: bool = False,
) -> float:
    """Hold the local cloud (and the web console) until ``stop`` is set; stop everything by PID.

    Records itself in ``local.json`` once the cloud is ready. Returns the cloud's start-up time."""
    from local_cloud import LocalCloud, LocalCloudError, PortInUse
    from mlops_edge.environment.console_process import start_console

    holder = running(state_dir)
    if holder is not None:
        raise AlreadyRunning(holder)
    check_ports(port, mqtt_port)
    # a loaded 2-core machine was seen to take 50 s (runs use LocalCloud's 30 s: they are watched)
    cloud = LocalCloud(
        state_dir=state_dir / CLOUD_SUBDIR, port=port, mqtt_port=mqtt_port, startup_timeout=STARTUP_TIMEOUT_S
    )
    try:
        cloud.start()
    except PortInUse as exc:  # taken between check_ports and the bind
        raise LocalCloudProblem(port_taken_message(exc.port, mqtt=exc.mqtt)) from exc
    except LocalCloudError as exc:
        raise LocalCloudProblem(str(exc)) from exc
    web = None
    try:
        env = cloud.env()
        _print_ready(cloud, state_dir, echo)
        web = start_console(state_dir, env={**os.environ, **env}, log=echo) if console else None
        # recorded last: `--detach` returns when the record exists, so everything is up by then
        log = state_dir / LOG_FILE if detached else None
        write_env_file(state_dir, env, by="mlops-edge local up", detached=detached, log=log)
        echo("mlops-edge local stop stops everything." if detached else "Ctrl-C stops everything.")
        while not stop.wait(0.5):
            if cloud.process is None or cloud.process.poll() is not None:
                raise LocalCloudProblem(f"the endpoint exited; see {cloud.state_dir / 'endpoint.log'}")
        return cloud.startup_seconds
    finally:
        clear_env_file(state_dir)
        stopping = time.monotonic()
        # the console and the endpoint shut down side by side (each takes seconds on its own)
        console_stop = threading.Thread(target=web.stop) if web is not None else None
        if console_stop is not None:
            console_stop.start()
        cloud.stop()
        if console_stop is not None:
            console_stop.join()
        echo(f"local cloud stopped in {time.monotonic() - stopping:.1f}s")


def _print_ready(cloud: Any, state_dir: Path, echo: Callable[[str], Any]) -> None:
    ident = cloud.pipeline_identity
    flag = "" if state_dir.resolve() == Path(".local").resolve() else f" --state-dir {state_dir}"
    echo(f"local cloud ready in {cloud.startup_seconds:.2f}s (state: {cloud.state_dir})")
    echo(f"  AWS endpoint   {cloud.endpoint_url}")
    echo(f"  health         {cloud.endpoint_url}{HEALTH_PATH}")
    echo(f"  MQTT endpoint  mqtts://{cloud.mqtt.host}:{cloud.mqtt.port} (mTLS)")
    echo(f"  CA             {ident.ca_path}")
    echo(f"  pipeline cert  {ident.cert_path}")
    echo(f"  pipeline key   {ident.key_path}")
    echo(f"  devices        {cloud.state_dir / 'mqtt' / 'devices'}/<thing>/{{cert.pem,private.key}}")
    echo(f"  logs           {cloud.state_dir / 'endpoint.log'} (mlops-edge local logs{flag})")
    echo(f"  AWS profile    {PROFILE} (AWS_CONFIG_FILE={state_dir.resolve() / AWS_CONFIG})")
    echo("")
    echo("Use it without changing your shell:")
    echo(f"  mlops-edge local exec{flag} -- aws stepfunctions list-state-machines")
    echo(f'or point this shell at it:  eval "$(mlops-edge local env{flag})"')
    echo(f'          and back again:  eval "$(mlops-edge local env --unset{flag})"')
    echo("")


def start_detached(
    state_dir: Path,
    *,
    port: int,
    mqtt_port: int = 0,
    console: bool,
    timeout: float = STARTUP_TIMEOUT_S + 30,
) -> Running:
    """Start `mlops-edge local up` in the background (own session, output to local.log); return
    once it has recorded itself and its endpoint answers the health check. Taken ports are named
    before the child starts."""
    holder = running(state_dir)
    if holder is not None:
        raise AlreadyRunning(holder)
    check_ports(port, mqtt_port)
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    command = [sys.executable, "-m", "mlops_edge.main", "local", "up", "--state-dir", str(state_dir)]
    command += ["--port", str(port), "--mqtt-port", str(mqtt_port)]
    command += ["--console" if console else "--no-console", "--in-background"]
    with open(log_path, "ab") as log:
        log.write(
            f"\n==> {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {' '.join(command)}\n".encode()
        )
        log.flush()
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = running(state_dir)
        if holder is not None and holder.pid == child.pid and health(holder.endpoint_url) is not None:
            return holder
        if child.poll() is not None:
            raise LocalCloudProblem(_why_not_started(log_path))
        time.sleep(0.1)
    _stop_tree(child.pid, processes.start_ticks(child.pid), timeout=10)
    raise LocalCloudProblem(f"the local cloud did not become healthy in {timeout:.0f} s; see {log_path}")


def _why_not_started(log_path: Path) -> str:
    """The child's own one-line error when it gave one (a port taken after our check, say), else
    the end of its log."""
    tail = _tail(log_path, 15)
    errors = [line for line in tail.splitlines() if line.startswith("Error: ")]
    if errors:
        return f"{errors[-1].removeprefix('Error: ')} (log: {log_path})"
    return f"the local cloud did not start:\n{tail}\n(log: {log_path})"


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class Stopped:
    """What `stop` did: the holder, every process found under it, and which needed a SIGKILL."""

    pid: int
    processes: list[int]
    killed: list[int]
    seconds: float


def stop(state_dir: Path, timeout: float = 20.0) -> Stopped | None:
    """SIGTERM the holder (it stops its children), wait, SIGKILL what remains; None if nothing ran."""
    holder = running(state_dir)
    if holder is None:
        return None
    return _stop_tree(holder.pid, holder.ticks, timeout)


def _stop_tree(pid: int, ticks: int | None, timeout: float) -> Stopped:
    started = time.monotonic()
    tree: list[tuple[int, int | None]] = [(pid, ticks), *processes.descendants(pid)]
    processes.signal_exact(pid, ticks, signal.SIGTERM)
    left = processes.wait_gone(tree, timeout)
    killed = processes.kill_all(left)
    if killed:
        processes.wait_gone([(p, t) for p, t in left if p in killed], 5.0)
    return Stopped(pid, [p for p, _ in tree], killed, time.monotonic() - started)


def log_path(state_dir: Path, source: str) -> Path:
    return state_dir / LOG_SOURCES[source]


def tail_lines(path: Path, count: int | None) -> tuple[list[str], int]:
    """The last ``count`` lines of ``path`` (all when None) and the offset they end at."""
    data = path.read_bytes()
    lines = data.decode(errors="replace").splitlines()
    return (lines if count is None else lines[-count:] if count > 0 else []), len(data)


def follow(
    path: Path, offset: int, echo: Callable[[str], Any], keep_going: Callable[[], bool], interval: float = 0.2
) -> None:
    """Print what is appended to ``path`` after ``offset`` while ``keep_going()``; a file that
    shrank (truncated, replaced) is read again from its start."""
    pending = b""
    while True:
        going = keep_going()
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if size < offset:
            offset = 0
        if size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read(size - offset)
            offset += len(chunk)
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                echo(line.decode(errors="replace"))
        if not going:
            if pending:
                echo(pending.decode(errors="replace"))
            return
        time.sleep(interval)
