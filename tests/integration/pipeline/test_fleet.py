"""A run with fewer devices than an earlier one takes the others out of the thing group."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_edge.environment.fleet import Fleet

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
