"""Simulated Greengrass core devices, each a real `mlops-edge device run` process.

The one launcher for both `mlops-edge run` and the tests: devices are provisioned through the local
cloud (thing, certificate, group membership), started in their own sessions, considered started
once the core writes ``<root>/core.pid`` (it is connected), and stopped by PID — SIGTERM first so
components run their shutdown, then SIGKILL of the process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THING_PREFIX = "mlops-edge-device-"
READY_TIMEOUT_S = 30.0


class FleetError(RuntimeError):
    """A simulated device could not start."""


@dataclass
class Device:
    """One running simulated core."""

    thing_name: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    identity: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def component_log(self, component: str) -> str:
        path = self.root / "logs" / f"{component}.log"
        return path.read_text() if path.exists() else ""


def thing_names(count: int) -> list[str]:
    return [f"{THING_PREFIX}{i:02d}" for i in range(1, count + 1)]


def start_device(
    identity: Any,
    root: Path,
    env: Mapping[str, str],
    *,
    options: Mapping[str, object] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Device:
    """Start ``mlops-edge device run`` for ``identity`` and wait until it is connected.

    ``options`` are extra ``device run`` options, e.g. ``{"heartbeat": 5, "settle": 1}``.
    """
    device = launch_device(identity, root, env, options=options)
    wait_ready(device, ready_timeout_s)
    return device


def launch_device(
    identity: Any, root: Path, env: Mapping[str, str], *, options: Mapping[str, object] | None = None
) -> Device:
    """Start the core process without waiting (so a fleet starts in parallel)."""
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "device.log"
    cmd = [
        sys.executable, "-m", "mlops_edge.main", "device", "run",
        "--thing", identity.thing_name,
        "--root", str(root),
        "--cert", str(identity.cert_path),
        "--key", str(identity.key_path),
        "--ca", str(identity.ca_path),
        "--mqtt-host", identity.mqtt_host,
        "--mqtt-port", str(identity.mqtt_port),
    ]  # fmt: skip
    for name, value in (options or {}).items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    (root / "core.pid").unlink(missing_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Device(identity.thing_name, root, log_path, process, identity)


def wait_ready(device: Device, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait for the core's ``core.pid`` (written once connected); stop it and raise if it dies."""
    deadline = time.monotonic() + timeout_s
    while not (device.root / "core.pid").exists():
        if not device.alive() or time.monotonic() > deadline:
            stop_device(device)
            tail = device.log_path.read_text(errors="replace")[-2000:]
            raise FleetError(
                f"simulated device {device.thing_name} did not start (log {device.log_path}):\n{tail}"
            )
        time.sleep(0.05)


def stop_device(device: Device, timeout_s: float = 15.0) -> int | None:
    """SIGTERM the core (it runs its components' shutdown), SIGKILL its group if it hangs."""
    proc = device.process
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    return proc.returncode


class Fleet:
    """Simulated cores against one running local cloud; every one is stopped by PID."""

    def __init__(self, cloud: Any, *, root: Path, thing_group: str, env: Mapping[str, str]) -> None:
        self._cloud = cloud
        self._root = root
        self._group = thing_group
        self._env = dict(env)
        self.devices: list[Device] = []

    def start(
        self,
        count: int = 1,
        *,
        names: Iterable[str] | None = None,
        options: Mapping[str, object] | None = None,
        wait: bool = True,
    ) -> list[Device]:
        """Provision and start ``count`` devices (named ``mlops-edge-device-NN`` unless ``names``),
        all at once; ``wait=False`` returns before they are connected (see :meth:`wait_reported`)."""
        started = []
        for thing in list(names) if names is not None else thing_names(count):
            identity = self._cloud.provision_device(thing, thing_group=self._group)
            started.append(launch_device(identity, self._root / thing, self._env, options=options))
        self.devices += started
        for device in started if wait else ():
            wait_ready(device)
        return started

    def retire_others(self, iot: Any) -> list[str]:
        """Take things that are not in this fleet (devices of an earlier, larger run in the same
        state directory) out of the thing group: the pipeline waits for every member's own result,
        and a member that no process runs would only ever time out."""
        ours = {d.thing_name for d in self.devices}
        members = [
            thing
            for page in iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=self._group)
            for thing in page["things"]
        ]
        retired = sorted(set(members) - ours)
        for thing in retired:
            iot.remove_thing_from_thing_group(thingGroupName=self._group, thingName=thing)
        return retired

    def wait_reported(self, greengrass: Any, *, timeout_s: float = 60.0) -> list[str]:
        """Block until every device is known to the control plane; returns those that are not."""
        deadline = time.monotonic() + timeout_s
        wanted = {d.thing_name for d in self.devices}
        while True:
            dead = [d for d in self.devices if not d.alive()]
            if dead:
                names = ", ".join(f"{d.thing_name} (see {d.log_path})" for d in dead)
                raise FleetError(f"simulated device exited: {names}")
            cores = greengrass.list_core_devices().get("coreDevices", [])
            missing = wanted - {c["coreDeviceThingName"] for c in cores}
            if not missing or time.monotonic() > deadline:
                return sorted(missing)
            time.sleep(0.2)

    def stop(self, device: Device | None = None) -> int | None:
        """Stop one device (returns its exit code), or every device when none is given."""
        targets = [device] if device is not None else list(self.devices)
        code = None
        for target in targets:
            code = stop_device(target)
            if target in self.devices:
                self.devices.remove(target)
        return code
