"""CheckDeployment and device presence: how unfinished devices are named from their newest AWS IoT
lifecycle event (the presence rule's objects, one per event, ordered by versionNumber/timestamp
whatever order they arrived in), and the early decision when every unfinished device of a stage
has been offline past the grace period (docs/contracts.md "Device presence")."""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import pytest

import lambdas.core.deployment as deployment_module
from lambdas.core.configure import configure
from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.detail import read_detail
from lambdas.core.exceptions import DeploymentFailed
from lambdas.core.presence import (
    EVENT_KEY_TEMPLATE,
    PRESENCE_FOLDER,
    grace_s,
    last_event,
    legacy_key,
    presence_detail,
)
from local_cloud.services.iot_rules.engine import substitute
from local_cloud.services.iot_rules.sql import Message
from pipeline.config.function_env import Settings

from .conftest import BUCKET
from .fakes import FakeGreengrass
from .test_deployment import COMPONENTS, STATUS_URI, add_things, effective

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def _event(
    kind: str, thing: str, at: float, reason: str = "CONNECTION_LOST", version: int | None = 1
) -> dict[str, Any]:
    body: dict[str, Any] = {"clientId": thing, "timestamp": int(at * 1000), "eventType": kind}
    if version is not None:
        body["versionNumber"] = version
    if kind == "disconnected":
        body["disconnectReason"] = reason
    return body


def _record(s3: Any, config: dict[str, Any], body: dict[str, Any]) -> None:
    """What the presence rule's s3 action writes for one event as it arrives: the SELECT * result
    at the rule's key, substituted as the rules engine does (infra/presence.py builds the rule's
    key from the same template; tests/infra/test_presence.py pins it)."""
    topic = f"$aws/events/presence/{body['eventType']}/{body['clientId']}"
    key = substitute(config["state_prefix"] + PRESENCE_FOLDER + EVENT_KEY_TEMPLATE, Message(topic, body))
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


@pytest.mark.parametrize(
    ("event", "registered", "expected"),
    [
        (
            _event("disconnected", "c", T0),
            True,
            "offline: disconnected 2027-01-15T08:00:00Z (CONNECTION_LOST)",
        ),
        (
            _event("disconnected", "c", T0 + 5, "CLIENT_INITIATED_DISCONNECT"),
            False,
            "offline: disconnected 2027-01-15T08:00:05Z (CLIENT_INITIATED_DISCONNECT)",
        ),
        (_event("connected", "c", T0), True, None),  # online: the deployment's own words
        (_event("connected", "c", T0), False, None),
        (None, False, "never connected"),  # no presence record, no core device
        (None, True, None),  # a core device that connected before the rule existed
    ],
)
def test_naming(event: dict[str, Any] | None, registered: bool, expected: str | None) -> None:
    assert presence_detail(event, registered) == expected


@pytest.mark.parametrize(("budget", "grace"), [(None, 30.0), (0, 30.0), (600, 30.0), (120, 30.0), (60, 15.0)])
def test_the_grace_is_30_s_or_a_quarter_of_a_short_budget(budget: float | None, grace: float) -> None:
    assert grace_s(budget) == grace


HOUR = 3600.0
#: (what happened, in the order it happened) -> (eventType, timestamp s, disconnectReason) of the
#: event that must decide. Versions as AWS numbers them: a connection's two events share one, the
#: next connection's is higher, and it restarts at 0 after about an hour away.
SEQUENCES = {
    "a session taken over: the old connection's disconnect comes last": (
        [
            ("connected", 1, 0.0, None),
            ("connected", 2, 1.0, None),
            ("disconnected", 1, 1.2, "DUPLICATE_CLIENTID"),
        ],
        ("connected", 1.0, None),
    ),
    "dropped, then back": (
        [
            ("connected", 1, 0.0, None),
            ("disconnected", 1, 10.0, "CONNECTION_LOST"),
            ("connected", 2, 12.0, None),
        ],
        ("connected", 12.0, None),
    ),
    "back, then gone again": (
        [
            ("connected", 1, 0.0, None),
            ("disconnected", 1, 10.0, "CONNECTION_LOST"),
            ("connected", 2, 12.0, None),
            ("disconnected", 2, 20.0, "CLIENT_INITIATED_DISCONNECT"),
        ],
        ("disconnected", 20.0, "CLIENT_INITIATED_DISCONNECT"),
    ),
    "timestamps inverted within their +/-2 min accuracy: the version decides": (
        [
            ("connected", 1, 0.0, None),
            ("disconnected", 1, 90.0, "CONNECTION_LOST"),
            ("connected", 2, 30.0, None),
        ],
        ("connected", 30.0, None),
    ),
    "version reset to 0 after more than an hour away: the time decides": (
        [
            ("connected", 7, 0.0, None),
            ("disconnected", 7, 10.0, "CONNECTION_LOST"),
            ("connected", 0, 1.5 * HOUR, None),
        ],
        ("connected", 1.5 * HOUR, None),
    ),
    "version reset, then gone again": (
        [
            ("connected", 7, 0.0, None),
            ("disconnected", 7, 10.0, "CONNECTION_LOST"),
            ("connected", 0, 1.5 * HOUR, None),
            ("disconnected", 0, 1.5 * HOUR + 5, "CONNECTION_LOST"),
        ],
        ("disconnected", 1.5 * HOUR + 5, "CONNECTION_LOST"),
    ),
}


def _arrivals(count: int, seed: int) -> list[list[int]]:
    """Every order of ``count`` events (up to 24, else 24 shuffles), each with one event delivered
    twice more at a random place, as AWS may deliver them."""
    rng = random.Random(seed)
    orders = [list(o) for o in itertools.permutations(range(count))]
    orders = orders if len(orders) <= 24 else [rng.sample(range(count), count) for _ in range(24)]
    for order in orders:
        for _ in range(2):
            order.insert(rng.randrange(len(order) + 1), rng.choice(order))
    return orders


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_the_newest_event_decides_whatever_order_and_duplicates_arrive_in(
    s3: Any, config: dict[str, Any], name: str
) -> None:
    happened, (kind, at, reason) = SEQUENCES[name]
    events = [_event(k, "-", T0 + t, reason or "", version=v) for k, v, t, reason in happened]
    for n, order in enumerate(_arrivals(len(events), seed=len(name))):
        thing = f"core-{n}"
        for i in order:
            _record(s3, config, {**events[i], "clientId": thing})
        found = last_event(s3, config, thing)
        assert found is not None, order
        got = (found["eventType"], found["timestamp"] / 1000 - T0, found.get("disconnectReason"))
        assert got == (kind, at, reason), (name, order)
        expected = None if kind == "connected" else f"offline: disconnected {_iso(T0 + at)} ({reason})"
        assert presence_detail(found, registered=True) == expected


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _SmallPages:
    """The bucket as S3 lists it, two keys a page, so the reader must follow the pages."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.pages = 0

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.pages += 1
        return self.s3.list_objects_v2(MaxKeys=2, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def test_every_page_is_read_and_only_the_rules_own_keys_count(s3: Any, config: dict[str, Any]) -> None:
    folder = f"{config['state_prefix']}{PRESENCE_FOLDER}"
    for v in range(1, 4):
        _record(s3, config, _event("connected", "core-1", T0 + 10 * v, version=v))
        _record(s3, config, _event("disconnected", "core-1", T0 + 10 * v + 5, version=v))
    # not the rule's: a note in the folder, and client id "core-1/x" (its events are in a subfolder)
    s3.put_object(Bucket=BUCKET, Key=f"{folder}core-1/9999-{int(T0 * 1000) + 99_000}-notes.json", Body=b"{}")
    _record(s3, config, _event("connected", "core-1/x", T0 + 99, version=9))
    paged = _SmallPages(s3)
    found = last_event(paged, config, "core-1")
    assert found is not None and paged.pages >= 4
    assert (found["eventType"], found["versionNumber"], found["timestamp"]) == (
        "disconnected",
        3,
        int((T0 + 35) * 1000),
    )


def test_a_record_of_the_old_single_object_layout_is_read_when_no_event_is_stored(
    s3: Any, config: dict[str, Any]
) -> None:
    """Before events were kept apart the rule overwrote ``presence/<clientId>.json``: a device
    that has not reconnected since the new rule exists still has that record."""
    old = _event("disconnected", "core-9", T0)
    s3.put_object(Bucket=BUCKET, Key=legacy_key(config, "core-9"), Body=json.dumps(old).encode())
    assert last_event(s3, config, "core-9") == old
    _record(s3, config, _event("connected", "core-9", T0 + 60, version=2))
    found = last_event(s3, config, "core-9")
    assert found is not None and found["eventType"] == "connected"  # the stored events win
    assert last_event(s3, config, "core-never") is None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    now = {"now": T0}
    monkeypatch.setattr(deployment_module.time, "time", lambda: now["now"])
    return now


def _started(iot: Any, s3: Any, config: dict[str, Any], gg: FakeGreengrass, *things: str) -> dict[str, Any]:
    add_things(iot, *things)
    config["poll"]["deployment"] = {"interval_s": 10, "timeout_s": 600, "max_polls": 10_000}
    return {
        "config": config,
        "deployment": deploy({"config": config, "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3),
    }


def test_a_stage_whose_unfinished_devices_are_offline_fails_after_the_grace_not_the_budget(
    iot: Any, s3: Any, config: dict[str, Any], clock: dict[str, float]
) -> None:
    gg = FakeGreengrass()
    event = _started(iot, s3, config, gg, "core-a", "core-b")
    gg.effective = {
        "core-a": [effective("dep-1", "SUCCEEDED", "SUCCESSFUL")],
        "core-b": [effective("dep-1", "IN_PROGRESS")],
    }
    _record(s3, config, _event("disconnected", "core-b", T0 + 10))
    clock["now"] = T0 + 20  # 10 s offline: within the grace, still waiting, but named
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "IN_PROGRESS"
    assert (
        "core-b: IN_PROGRESS (offline: disconnected 2027-01-15T08:00:10Z (CONNECTION_LOST))" in out["summary"]
    )
    clock["now"] = T0 + 40  # 30 s offline, far within the 600 s budget
    with pytest.raises(DeploymentFailed) as info:
        check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert (
        "failed on 1 of 2 device(s): core-b: offline: disconnected 2027-01-15T08:00:10Z (CONNECTION_LOST)"
        in str(info.value)
    )
    detail = read_detail(s3, STATUS_URI)
    assert detail is not None and {d["thing"]: d["status"] for d in detail["devices"]} == {
        "core-a": "SUCCEEDED",
        "core-b": "FAILED",
    }


def test_an_offline_device_waits_while_another_is_still_at_work_or_it_reconnects(
    iot: Any, s3: Any, config: dict[str, Any], clock: dict[str, float]
) -> None:
    gg = FakeGreengrass()
    event = _started(iot, s3, config, gg, "core-a", "core-b")
    gg.effective = {
        "core-a": [effective("dep-1", "IN_PROGRESS")],
        "core-b": [effective("dep-1", "IN_PROGRESS")],
    }
    _record(s3, config, _event("connected", "core-a", T0))
    _record(s3, config, _event("disconnected", "core-b", T0))
    clock["now"] = T0 + 100
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "IN_PROGRESS" and out["counts"]["failed"] == 0  # core-a may still finish
    assert (
        "core-a: IN_PROGRESS;" in out["summary"]
        and "core-b: IN_PROGRESS (offline: disconnected" in out["summary"]
    )
    gg.effective["core-a"] = [effective("dep-1", "SUCCEEDED")]
    _record(s3, config, _event("connected", "core-b", T0 + 101, version=2))  # back: online again
    clock["now"] = T0 + 200
    out = check_deployment(event, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "IN_PROGRESS" and "offline" not in out["summary"]


def test_offline_devices_within_the_stage_threshold_let_the_stage_succeed(
    iot: Any, s3: Any, settings: Settings, clock: dict[str, float]
) -> None:
    """Consistent with the threshold logic: offline devices count as failed, failed/targeted*100 is
    compared with failure_threshold_percent (here 50: 1 of 2 may fail)."""
    stages = [{"name": "fleet", "failure_threshold_percent": 50}]
    state = configure(
        {"input": {"rollout": {"stages": stages}}, "execution": "exec-1"}, settings=settings, s3=None
    )
    gg = FakeGreengrass()
    event = _started(iot, s3, state["config"], gg, "core-a", "core-b")
    gg.effective = {"core-a": [effective("dep-1", "SUCCEEDED")], "core-b": [effective("dep-1", "QUEUED")]}
    _record(s3, state["config"], _event("disconnected", "core-b", T0))
    clock["now"] = T0 + 31
    out = check_deployment({**state, **event}, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "SUCCEEDED"
    assert (out["counts"]["succeeded"], out["counts"]["failed"]) == (1, 1)
