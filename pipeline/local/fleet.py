"""A fleet of simulated Greengrass core devices, each a real `mlops-edge device run` process.

Devices are provisioned through the local cloud (thing, certificate, group membership), then
started as subprocesses in their own sessions and stopped by PID, whatever happens to the caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THING_PREFIX = "mlops-edge-device-"


class FleetError(RuntimeError):
    """A simulated device could not start."""


@dataclass
class Device:
    thing_name: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def thing_names(count: int) -> list[str]:
    return [f"{THING_PREFIX}{i:02d}" for i in range(1, count + 1)]


class Fleet:
    """Starts and stops N simulated cores against a running local cloud."""

    def __init__(self, cloud: Any, *, root: Path, thing_group: str, env: Mapping[str, str]) -> None:
        self._cloud = cloud
        self._root = root
        self._group = thing_group
        self._env = dict(env)
        self.devices: list[Device] = []

    def start(self, count: int) -> list[Device]:
        for thing in thing_names(count):
            ident = self._cloud.provision_device(thing, thing_group=self._group)
            root = self._root / thing
            root.mkdir(parents=True, exist_ok=True)
            log_path = root / "device.log"
            cmd = [
                sys.executable, "-m", "pipeline.cli.main", "device", "run",
                "--thing", thing,
                "--root", str(root),
                "--cert", str(ident.cert_path),
                "--key", str(ident.key_path),
                "--ca", str(ident.ca_path),
                "--mqtt-host", ident.mqtt_host,
                "--mqtt-port", str(ident.mqtt_port),
            ]  # fmt: skip
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    cmd,
                    env={**os.environ, **self._env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.devices.append(Device(thing, root, log_path, process))
        return self.devices

    def wait_reported(self, greengrass: Any, *, timeout_s: float = 60.0) -> list[str]:
        """Block until every device has reported to the control plane; returns those that have not."""
        deadline = time.monotonic() + timeout_s
        wanted = {d.thing_name for d in self.devices}
        while True:
            dead = [d for d in self.devices if not d.alive()]
            if dead:
                names = ", ".join(f"{d.thing_name} (see {d.log_path})" for d in dead)
                raise FleetError(f"simulated device exited during start-up: {names}")
            cores = greengrass.list_core_devices().get("coreDevices", [])
            missing = wanted - {c["coreDeviceThingName"] for c in cores}
            if not missing or time.monotonic() > deadline:
                return sorted(missing)
            time.sleep(0.2)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every device (it runs its components' shutdown), then SIGKILL the process group."""
        for device in self.devices:
            if device.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(device.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        for device in self.devices:
            if device.process is None:
                continue
            try:
                device.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(device.process.pid, signal.SIGKILL)
                device.process.wait(timeout=5)
