"""The fleet launcher: a windowed start with progress and the fault switch; a run with fewer devices
than an earlier one takes the others out of the thing group."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_edge.environment.fleet import FAULT_FAIL_INSTALL_ENV, Fleet

pytestmark = pytest.mark.integration


def test_retire_others_leaves_only_this_fleet_in_the_group(local_cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    things = [f"{group}-d{i}" for i in range(3)]
    for thing in things:
        local_cloud.provision_device(thing, thing_group=group)
    fleet = Fleet(local_cloud, root=tmp_path, thing_group=group, env={})
    fleet.devices = [SimpleNamespace(thing_name=things[0])]  # type: ignore[list-item]
    iot = local_cloud.client("iot")

    assert fleet.retire_others(iot) == things[1:]
    assert iot.list_things_in_thing_group(thingGroupName=group)["things"] == [things[0]]
    assert fleet.retire_others(iot) == []


def test_windowed_start_connects_every_device_and_passes_the_fault_switch(
    local_cloud, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    local_cloud.client("iot").create_thing_group(thingGroupName=group)
    names = [f"{group}-d{i}" for i in range(3)]
    fleet = Fleet(local_cloud, root=tmp_path, thing_group=group, env=local_cloud.env())
    lines: list[str] = []
    try:
        devices = fleet.start(names=names, window=2, faulty={names[1]}, progress=lines.append)
        assert sorted(d.thing_name for d in devices) == names
        assert all((d.root / "core.pid").exists() and d.alive() for d in devices)
        assert lines and lines[-1].startswith("devices 3/3 running")
        environ = {d.thing_name: Path(f"/proc/{d.pid}/environ").read_bytes().split(b"\0") for d in devices}
        switch = FAULT_FAIL_INSTALL_ENV.encode() + b"=*"
        assert [t for t, env in environ.items() if switch in env] == [names[1]]
        assert all(b"MALLOC_ARENA_MAX=2" in env for env in environ.values())
    finally:
        fleet.stop()
    assert fleet.devices == [] and not any(d.alive() for d in devices)
