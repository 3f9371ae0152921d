"""The local environment as one object: the local cloud, the simulated fleet, the deployed pipeline.

A context manager so that whatever was started is stopped, by PID, however the run ends (success,
failure, Ctrl-C, SIGTERM from CI). `mlops-edge run` is one user of it; anything that needs the
whole environment up (a benchmark, the console) can be another, without the run's reporting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mlops_edge.environment import processes
from mlops_edge.environment.assembly import AssemblyError
from mlops_edge.environment.cdk_deploy import DeployFailed
from mlops_edge.environment.deploy import LocalPipeline, deploy_pipeline
from mlops_edge.environment.envfile import CLOUD_SUBDIR, STATE_MACHINE_ENV, write_env_file
from mlops_edge.environment.fleet import THING_PREFIX, Device, Fleet, FleetError, thing_names

__all__ = ["EnvironmentDied", "EnvironmentFailed", "LocalEnvironment", "PartDied", "sigterm_as_interrupt"]

#: How long started devices may take to show up in the control plane.
REPORT_TIMEOUT_S = 60.0


class EnvironmentFailed(RuntimeError):
    """A part of the environment could not be started; the message says which and where to look."""


@dataclass(frozen=True)
class PartDied:
    """A process of the environment that exited while the run needed it."""

    part: str  # "endpoint", "MQTT broker (mosquitto)", "device mlops-edge-device-01"
    pid: int | None
    log: str
    exit_code: int | None = None

    def describe(self) -> str:
        how = "exited" if self.exit_code is None else f"exited with {self.exit_code}"
        if self.exit_code is not None and self.exit_code < 0:
            how = f"was killed by signal {-self.exit_code}"
        return f"the local environment's {self.part} (PID {self.pid}) {how}; its log: {self.log}"


class EnvironmentDied(RuntimeError):
    """A part of the running environment died (:class:`PartDied`); the run cannot go on."""

    def __init__(self, died: PartDied) -> None:
        super().__init__(died.describe())
        self.died = died


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM (CI, `kill`) unwinds like Ctrl-C while inside, so every ``finally`` still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def orphans_of(state_dir: Path) -> list[int]:
    """PIDs of this user's processes working in or on ``state_dir`` (their working directory or
    command line is under it): what a crashed endpoint leaves behind (Linux /proc; else none)."""
    root = str(state_dir.resolve())
    found = []
    spared = _ancestors()  # this process and whatever started it (a shell given the path)
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else ():
        pid = int(entry.name)
        if pid in spared:
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        inside = cwd == root or cwd.startswith(root + os.sep) or root + os.sep in cmdline
        if inside and processes.alive(pid):
            found.append(pid)
    return found


def stop_orphans(state_dir: Path) -> list[int]:
    """SIGKILL, by PID, every process :func:`orphans_of` finds; returns their PIDs."""
    pids = orphans_of(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


class LocalEnvironment:
    """Local cloud + the pipeline stack deployed on it + devices in its thing group, under one
    state directory.

    ``cdk_out`` deploys that cloud assembly as it is (what CI built); without it the CDK app is
    synthesized, cached under ``assembly_cache`` (default ``<state dir>/cache``) by its inputs.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        cdk_out: Path | None = None,
        assembly_cache: Path | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        from local_cloud import LocalCloud

        self.state_dir = state_dir
        self.cdk_out = cdk_out
        self.assembly_cache = assembly_cache or state_dir / "cache"
        self.cloud = LocalCloud(state_dir / CLOUD_SUBDIR)
        self.fleet: Fleet | None = None
        self.devices: list[Device] = []
        self.pipeline: LocalPipeline | None = None
        self.env: dict[str, str] = {}
        self._log = log

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalEnvironment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop devices, then the cloud, by PID; after a crash of the endpoint also what it had
        started (mosquitto, Lambda workers, training jobs) and can no longer stop itself."""
        crashed = self.cloud.process is not None and self.cloud.process.poll() is not None
        if self.fleet is not None:
            self.fleet.stop()
        self.cloud.stop()
        if crashed:
            stop_orphans(self.cloud.state_dir)

    def log(self, message: str) -> None:
        """A line on the run's console, as the environment's own steps print theirs."""
        self._log(message)

    # -- health ----------------------------------------------------------------------------------
    def dead_part(self) -> PartDied | None:
        """The first part of the started environment whose process is gone, else None:
        the endpoint, the broker it owns, or a device."""
        proc = self.cloud.process
        cloud_dir = self.state_dir / CLOUD_SUBDIR
        if proc is not None and proc.poll() is not None:
            return PartDied("endpoint", proc.pid, str(cloud_dir / "endpoint.log"), proc.returncode)
        broker_pid = self.cloud.info.get("mosquitto_pid") if proc is not None else None
        if broker_pid and not processes.alive(int(broker_pid)):
            return PartDied(
                "MQTT broker (mosquitto)", int(broker_pid), str(cloud_dir / "mqtt" / "mosquitto.log")
            )
        for device in self.devices:
            if not device.alive():
                return PartDied(
                    f"device {device.thing_name}",
                    device.pid,
                    str(device.log_path),
                    device.process.returncode,
                )
        return None

    def check_alive(self) -> None:
        """Raise :class:`EnvironmentDied` naming the first dead part, if any."""
        died = self.dead_part()
        if died is not None:
            raise EnvironmentDied(died)

    # -- steps -----------------------------------------------------------------------------------
    def start_cloud(self) -> dict[str, str]:
        """Start the endpoint and broker; this process's AWS clients point at them from now on."""
        self.cloud.start()
        self.env = self.cloud.env()
        os.environ.update(self.env)
        self._log(
            f"local cloud at {self.cloud.endpoint_url}, MQTT {self.cloud.mqtt.host}:{self.cloud.mqtt.port} "
            f"(up in {self.cloud.startup_seconds:.1f} s)"
        )
        return self.env

    def start_devices(self, count: int, *, faulty: Collection[str] = ()) -> list[Device]:
        """Start ``count`` cores in the stack's thing group, a bounded window at a time, and return
        once each is connected (``fleet.Fleet.start``); ``faulty`` devices fail their installs (fault
        injection). The stack must be deployed first, as on AWS the group exists before a device
        provisions itself into it."""
        from pipeline.aws import client
        from pipeline.config.rollout import default_canary_group

        assert self.pipeline is not None, "deploy first: the stack creates the thing group"
        group = self.pipeline.thing_group
        self.fleet = Fleet(self.cloud, root=self.state_dir / "devices", thing_group=group, env=self.env)
        names = thing_names(count)
        shown = ", ".join(names) if count <= 5 else f"{names[0]} … {names[-1]}"
        self._log(f"devices: {shown} ({count}, named {THING_PREFIX}NN) starting in {group}")
        try:
            self.devices = self.fleet.start(count, faulty=faulty, progress=self._log)
        except FleetError as exc:
            raise EnvironmentFailed(str(exc)) from exc
        canary = default_canary_group(group, os.environ.get("MLOPS_EDGE_CANARY_THING_GROUP", ""))
        retired = self.fleet.retire_others(client("iot"), also=[canary])
        if retired:
            self._log(f"devices: {', '.join(retired)} (an earlier run's) left {group} and {canary}")
        return self.devices

    def deploy(self) -> LocalPipeline:
        """Deploy the pipeline stack and record the environment (``local.json``: `mlops-edge local
        env` / `local exec`), so another shell can follow what runs next."""
        try:
            self.pipeline = deploy_pipeline(
                cache_dir=self.assembly_cache,
                verifier=self.cloud.pipeline_identity,
                cdk_out=self.cdk_out,
                log=lambda m: self._log(f"deploy: {m}"),
            )
        except (AssemblyError, DeployFailed) as exc:
            hint = ""
            if "already exist" in str(exc):
                hint = (
                    f"\n{self.state_dir} holds resources of the stack's names that no stack of it "
                    "owns (made by an older mlops-edge, or by hand): use a new --state-dir, or "
                    f"remove {self.state_dir / CLOUD_SUBDIR}"
                )
            raise EnvironmentFailed(
                f"{exc}{hint}\n(the local cloud's log: {self.state_dir / CLOUD_SUBDIR / 'endpoint.log'})"
            ) from exc
        write_env_file(self.state_dir, {**self.env, STATE_MACHINE_ENV: self.pipeline.state_machine_arn})
        return self.pipeline

    def wait_devices(self, timeout_s: float = REPORT_TIMEOUT_S) -> None:
        """Return once every started device is known to the control plane, else say which are not."""
        from pipeline.aws import client

        assert self.fleet is not None, "start_devices first"
        try:
            missing = self.fleet.wait_reported(client("greengrassv2"), timeout_s=timeout_s)
        except FleetError as exc:
            raise EnvironmentFailed(str(exc)) from exc
        if missing:
            raise EnvironmentFailed(
                f"devices did not report within {timeout_s:.0f} s: {', '.join(missing)} "
                f"(see {self.state_dir / 'devices'})"
            )
        self._log(f"devices: all {len(self.devices)} reported to the control plane")

    # -- what a person needs to reach it -----------------------------------------------------------
    @property
    def things(self) -> list[str]:
        return [d.thing_name for d in self.devices]

    def where_to_look(self) -> dict[str, str]:
        """Log locations of every part, for a failure summary."""
        return {
            "local cloud (endpoint, broker, training jobs)": str(
                self.state_dir / CLOUD_SUBDIR / "endpoint.log"
            ),
            **{
                f"device {d.thing_name} (core, components)": f"{d.log_path}, {d.root / 'logs'}/"
                for d in self.devices
            },
        }

    def keep_running(self, console: Any, *, example_input: Path | None = None) -> None:
        """Start the web console (prefilled with ``example_input``), print how to reach the
        environment, then wait for Ctrl-C."""
        import time

        from mlops_edge.environment.console_process import start_console

        env = self.env
        web = start_console(self.state_dir, example_input=example_input, log=console.print)
        console.print()
        console.print("[bold]the environment is running[/] (Ctrl-C stops it). In another shell:")
        flag = f" --state-dir {self.state_dir}"
        console.print(
            f'  eval "$(mlops-edge local env{flag})"    (undo: eval "$(mlops-edge local env --unset{flag})")'
        )
        console.print(
            f"  or one command at a time: mlops-edge local exec{flag} -- aws stepfunctions list-executions ..."
        )
        console.print("  mlops-edge mqtt sub 'edge/+/inference/result'")
        console.print("  mlops-edge devices")
        console.print(f"  mlops-edge infer --thing {self.things[0]} --json '{{\"rows\": [[...]]}}'")
        console.print(
            f"endpoint {env['AWS_ENDPOINT_URL']}; MQTT {env['MLOPS_EDGE_MQTT_HOST']}:{env['MLOPS_EDGE_MQTT_PORT']}"
        )
        console.print(
            f"  CA {env['MLOPS_EDGE_MQTT_CA']}\n  cert {env['MLOPS_EDGE_MQTT_CERT']}\n  key {env['MLOPS_EDGE_MQTT_KEY']}"
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping the environment")
        finally:
            if web is not None:
                web.stop()
