"""In-memory stand-ins for what the greengrassv2 backend reaches outside itself: IoT membership,
the clock, ids and S3. No broker, no HTTP server."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from local_cloud.services.greengrassv2.arns import Arns, Target, TargetKind
from local_cloud.services.greengrassv2.components import parse_recipe
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.models import GreengrassBackend
from local_cloud.services.greengrassv2.store import StateFile

ACCOUNT = "123456789012"
REGION = "us-east-1"
ARNS = Arns(REGION, ACCOUNT)


def group_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


class FakeDirectory:
    """Things and direct group membership, as the IoT API would report them."""

    def __init__(self) -> None:
        self.things: set[str] = set()
        self.groups: dict[str, set[str]] = {}

    def add(self, thing: str, *groups: str) -> None:
        self.things.add(thing)
        for group in groups:
            self.groups.setdefault(group, set()).add(thing)

    def members(self, target: Target) -> list[str] | None:
        if target.kind is TargetKind.THING:
            return [target.name] if target.name in self.things else None
        return sorted(self.groups[target.name]) if target.name in self.groups else None

    def groups_of(self, thing: str) -> set[str]:
        return {group for group, members in self.groups.items() if thing in members}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory() -> FakeDirectory:
    return FakeDirectory()


def make_backend(directory: FakeDirectory, clock: Clock, store: StateFile | None = None) -> GreengrassBackend:
    counter = itertools.count(1)
    return GreengrassBackend(ARNS, directory, store, clock=clock, new_id=lambda: f"id-{next(counter)}")


@pytest.fixture
def backend(directory: FakeDirectory, clock: Clock) -> GreengrassBackend:
    return make_backend(directory, clock)


@pytest.fixture
def plane(backend: GreengrassBackend) -> JobsDataPlane:
    return JobsDataPlane(backend)


def recipe(name: str, version: str, *artifacts: str) -> dict[str, Any]:
    raw = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentPublisher": "tests",
        "Manifests": [{"Platform": {"os": "linux"}, "Artifacts": [{"Uri": uri} for uri in artifacts]}],
    }
    return parse_recipe(json.dumps(raw).encode())


def deployable(backend: GreengrassBackend, name: str, version: str = "1.0.0") -> str:
    """Create and process a component version with no artifacts; its ARN."""
    record, _ = backend.create_component_version(recipe(name, version), None, None)
    backend.process_component(record.arn, lambda uri: b"")
    return record.arn
