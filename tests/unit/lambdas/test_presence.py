"""CheckDeployment and device presence: how unfinished devices are named from their last AWS IoT
lifecycle event (the presence rule's object), and the early decision when every unfinished device
of a stage has been offline past the grace period (docs/contracts.md "Device presence")."""

from __future__ import annotations

import json
from typing import Any

import pytest

import lambdas.core.deployment as deployment_module
from lambdas.core.configure import configure
from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.detail import read_detail
from lambdas.core.exceptions import DeploymentFailed
from lambdas.core.presence import grace_s, presence_detail, presence_key
from pipeline.config.function_env import Settings

from .conftest import BUCKET
from .fakes import FakeGreengrass
from .test_deployment import COMPONENTS, STATUS_URI, add_things, effective

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def _event(kind: str, thing: str, at: float, reason: str = "CONNECTION_LOST") -> dict[str, Any]:
    body: dict[str, Any] = {"clientId": thing, "timestamp": int(at * 1000), "eventType": kind}
    if kind == "disconnected":
        body["disconnectReason"] = reason
    return body


def _record(s3: Any, config: dict[str, Any], body: dict[str, Any]) -> None:
    """What the presence rule's s3 action writes."""
    s3.put_object(Bucket=BUCKET, Key=presence_key(config, body["clientId"]), Body=json.dumps(body).encode())


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
    _record(s3, config, _event("connected", "core-b", T0 + 101))  # back: no longer offline
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
