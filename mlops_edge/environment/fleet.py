"""Simulated Greengrass core devices, each a real core process (``python -m edge_runtime.core``).

The one launcher for both `mlops-edge run` and the tests: devices are provisioned through the local
cloud (thing, certificate, group membership), started in their own sessions, considered started
once the core writes ``<root>/core.pid`` (it is connected), and stopped by PID — SIGTERM first so
components run their shutdown, then SIGKILL of the process group.

A fleet of up to 100 full devices (issue 12) starts in a bounded window: at most
:data:`START_WINDOW` cores are starting (importing, connecting) at once, the next one launched as
soon as one is connected, so a 2-core machine is not asked to start 100 Python processes at the
same instant; a progress line reports every :data:`PROGRESS_EVERY` devices. Each device keeps its
own core process and its own inference component process; nothing is shared or forked.

Devices named in ``faulty`` are started with the core's fault switch
(:data:`edge_runtime.core.lifecycle.steps.FAULT_FAIL_INSTALL_ENV` = ``*``): every Install step on
them fails without running. That is for demonstrations and tests (``mlops-edge run
--fail-devices``), to show what a failing canary does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THING_PREFIX = "mlops-edge-device-"
READY_TIMEOUT_S = 60.0
#: Cores starting at once (launched, not yet connected): a start is CPU-bound (imports, TLS, and
#: the components a warm core restores), so more at once only makes each slower.
START_WINDOW = 8
#: A progress line every this many connected devices (and at the last one).
PROGRESS_EVERY = 10
#: The core's fault switch (edge_runtime.core.lifecycle.steps, not imported: that package would
#: bring awscrt into every tool; a unit test holds the two names equal).
FAULT_FAIL_INSTALL_ENV = "MLOPS_EDGE_FAULT_FAIL_INSTALL"
#: What a device's processes get besides the local cloud's variables: glibc keeps at most two malloc
#: arenas per process (a thread otherwise gets its own 64 MiB arena, of which it touches part), and
#: numerical libraries one thread each (a device serves single rows; 100 devices share 2 cores).
DEVICE_ENV = {
    "MALLOC_ARENA_MAX": "2",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


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
    """``mlops-edge-device-01`` … ``-NN``: the names `mlops-edge run --devices N` gives its devices."""
    return [f"{THING_PREFIX}{i:02d}" for i in range(1, count + 1)]


def fault_env(thing: str, faulty: Collection[str]) -> dict[str, str]:
    """The fault switch for ``thing`` when it is one of ``faulty`` (else nothing)."""
    return {FAULT_FAIL_INSTALL_ENV: "*"} if thing in faulty else {}


def start_device(
    identity: Any,
    root: Path,
    env: Mapping[str, str],
    *,
    options: Mapping[str, object] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Device:
    """Start a core for ``identity`` and wait until it is connected.

    ``options`` are extra options of the core (those of ``mlops-edge device run``), e.g.
    ``{"heartbeat": 5, "settle": 1}``.
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
        # the device entry point, not `mlops-edge device run` (same options, same run_core): the
        # operator's CLI would add click and rich to every core (~9 MB each, issue 12)
        sys.executable, "-m", "edge_runtime.core",
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
            env={**os.environ, **DEVICE_ENV, **env},
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
    _terminate(device)
    return _wait_stopped(device, timeout_s)


def _terminate(device: Device) -> None:
    """SIGTERM the core once (a second signal could cut its components' shutdown short)."""
    if device.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(device.process.pid, signal.SIGTERM)


def _wait_stopped(device: Device, timeout_s: float) -> int | None:
    """Wait for a terminated core; SIGKILL its process group when it does not exit in time."""
    proc = device.process
    if proc.poll() is None:
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
        faulty: Collection[str] = (),
        window: int = START_WINDOW,
        progress: Callable[[str], None] | None = None,
    ) -> list[Device]:
        """Provision and start ``count`` devices (named ``mlops-edge-device-NN`` unless ``names``).

        ``wait=False`` launches them all at once and returns before they are connected (see
        :meth:`wait_reported`); ``wait=True`` starts at most ``window`` at a time and returns once
        every one is connected, calling ``progress`` with "devices 40/100 running" lines.
        ``faulty`` names the devices started with the fault switch (their installs fail).
        """
        things = list(names) if names is not None else thing_names(count)
        if not wait:
            identities = [self._cloud.provision_device(t, thing_group=self._group) for t in things]
            started = [self._launch(identity, options, faulty) for identity in identities]
            self.devices += started
            return started
        # provisioning (~0.2 s a device: a certificate, the thing, its group) runs in a thread
        # beside the starts instead of before them all
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="provision") as pool:
            identities = [
                pool.submit(self._cloud.provision_device, t, thing_group=self._group) for t in things
            ]
            try:
                return self._start_windowed(identities, options, faulty, max(1, window), progress)
            finally:
                for future in identities:
                    future.cancel()

    def _launch(self, identity: Any, options: Mapping[str, object] | None, faulty: Collection[str]) -> Device:
        env = {**self._env, **fault_env(identity.thing_name, faulty)}
        return launch_device(identity, self._root / identity.thing_name, env, options=options)

    def _start_windowed(
        self,
        identities: list[Future[Any]],
        options: Mapping[str, object] | None,
        faulty: Collection[str],
        window: int,
        progress: Callable[[str], None] | None,
    ) -> list[Device]:
        """Keep ``window`` cores starting until every one is connected, each launched once its
        thing is provisioned; a provisioning error, or a core that dies or does not connect within
        :data:`READY_TIMEOUT_S`, stops the start (the caller stops the rest)."""
        pending = deque(identities)
        starting: dict[str, tuple[Device, float]] = {}
        started: list[Device] = []
        total = len(identities)
        began = time.monotonic()
        while pending or starting:
            while pending and len(starting) < window and (pending[0].done() or not starting):
                device = self._launch(pending.popleft().result(), options, faulty)
                self.devices.append(device)
                starting[device.thing_name] = (device, time.monotonic() + READY_TIMEOUT_S)
            for thing, (device, deadline) in list(starting.items()):
                if (device.root / "core.pid").exists():
                    del starting[thing]
                    started.append(device)
                    if progress is not None and (len(started) % PROGRESS_EVERY == 0 or len(started) == total):
                        progress(f"devices {len(started)}/{total} running ({time.monotonic() - began:.0f} s)")
                elif not device.alive() or time.monotonic() > deadline:
                    wait_ready(device, timeout_s=0)  # stops it and raises with its log's tail
            time.sleep(0.05)
        return started

    def retire_others(self, iot: Any, *, also: Iterable[str] = ()) -> list[str]:
        """Take things that are not in this fleet (devices of an earlier, larger run in the same
        state directory) out of the thing group and of the groups in ``also`` (the canary group a
        staged rollout moved some of them to): the pipeline waits for every member's own result,
        and a member that no process runs would only ever time out. Returns them, sorted."""
        ours = {d.thing_name for d in self.devices}
        retired: set[str] = set()
        for group in [self._group, *also]:
            try:
                members = [
                    thing
                    for page in iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group)
                    for thing in page["things"]
                ]
            except iot.exceptions.ResourceNotFoundException:
                continue  # no such group (yet): nobody to retire from it
            for thing in sorted(set(members) - ours):
                iot.remove_thing_from_thing_group(thingGroupName=group, thingName=thing)
                retired.add(thing)
        return sorted(retired)

    def wait_reported(self, greengrass: Any, *, timeout_s: float = 60.0) -> list[str]:
        """Block until every device is known to the control plane; returns those that are not."""
        deadline = time.monotonic() + timeout_s
        wanted = {d.thing_name for d in self.devices}
        while True:
            dead = [d for d in self.devices if not d.alive()]
            if dead:
                names = ", ".join(f"{d.thing_name} (see {d.log_path})" for d in dead)
                raise FleetError(f"simulated device exited: {names}")
            # every page: a cloud shared with other fleets (1,000 job clients) holds more than one
            pages = greengrass.get_paginator("list_core_devices").paginate()
            missing = wanted - {
                c["coreDeviceThingName"] for page in pages for c in page.get("coreDevices", [])
            }
            if not missing or time.monotonic() > deadline:
                return sorted(missing)
            time.sleep(0.2)

    def stop(self, device: Device | None = None) -> int | None:
        """Stop one device (returns its exit code), or every device when none is given: all are
        signalled first, then waited for, so their shutdowns run side by side."""
        targets = [device] if device is not None else list(self.devices)
        for target in targets:
            _terminate(target)
        code = None
        for target in targets:
            code = _wait_stopped(target, 15.0)
            if target in self.devices:
                self.devices.remove(target)
        return code
