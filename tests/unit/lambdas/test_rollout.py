"""Staged rollout: canary picking and moving, per-stage deploy and check, the stage verdict and row,
and a rollback scoped to the groups that received the new version."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.core.configure import configure
from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.detail import write_detail
from lambdas.core.exceptions import DeploymentFailed
from lambdas.core.promote import promote, rollback
from lambdas.core.rollout import canary_count, evaluate_stage, pick_canaries, rollback_groups, verdict
from local_cloud.services.sagemaker.model_packages import metadata_violations
from pipeline.config.function_env import Settings
from pipeline.execution_detail import VERIFICATION

from .conftest import BUCKET, assert_selectable, stubbed
from .fakes import FakeGreengrass
from .test_deployment import COMPONENTS, add_things, effective

CANARY = "edge-fleet-canary"
STAGES = [
    {"name": "canary", "canary": {"devices": 2}, "failure_threshold_percent": 50, "bake_s": 5},
    {"name": "fleet"},
]


def staged(settings: Settings, stages: list[dict[str, Any]] = STAGES) -> dict[str, Any]:
    """Configure's output for a two-stage input: ``config``, ``polls`` and ``rollout``."""
    return configure(
        {"input": {"rollout": {"stages": stages}}, "execution": "exec-1"}, settings=settings, s3=None
    )


def plain(settings: Settings) -> dict[str, Any]:
    """Configure's output for an input without ``rollout``: the single fleet stage."""
    return configure({"input": {}, "execution": "exec-2"}, settings=settings, s3=None)


def members(iot: Any, group: str) -> list[str]:
    return sorted(iot.list_things_in_thing_group(thingGroupName=group)["things"])


@pytest.mark.parametrize(
    ("canary", "fleet", "expected"),
    [({"devices": 3}, 10, 3), ({"devices": 30}, 10, 10), ({"percent": 10}, 100, 10), ({"percent": 1}, 10, 1)],
)
def test_canary_count(canary: dict[str, Any], fleet: int, expected: int) -> None:
    assert canary_count(canary, fleet) == expected


def test_canaries_are_sticky_then_by_name() -> None:
    assert pick_canaries(["d9"], ["d1", "d2", "d3"], {"devices": 2}) == ["d9", "d1"]
    assert pick_canaries([], ["d3", "d1", "d2"], {"devices": 2}) == ["d1", "d2"]
    assert pick_canaries([], [], {"devices": 2}) == []


@pytest.mark.parametrize(
    ("targeted", "failed", "threshold", "passes"),
    [(10, 0, 0, True), (10, 1, 0, False), (10, 1, 10, True), (10, 2, 10, False), (0, 0, 100, False)],
)
def test_verdict_is_failed_share_against_threshold(
    targeted: int, failed: int, threshold: float, passes: bool
) -> None:
    assert verdict(targeted, failed, threshold) is passes


def test_canary_stage_moves_its_devices_and_deploys_with_its_iot_job(
    iot: Any, s3: Any, settings: Settings
) -> None:
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c", "core-d")
    state = staged(settings)
    gg = FakeGreengrass()
    out = deploy({**state, "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3)
    assert_selectable("deploy", out)
    assert (out["thing_group"], out["device_count"], out["stage"], out["verify"]) == (CANARY, 2, 0, True)
    # disjoint targets: the canaries left the fleet group
    assert members(iot, CANARY) == ["core-a", "core-b"]
    assert members(iot, "edge-fleet") == ["core-c", "core-d"]
    (request,) = gg.deployments
    assert request["targetArn"].endswith(f"thinggroup/{CANARY}")
    assert request["deploymentName"].endswith("-canary")
    assert request["iotJobConfiguration"] == state["config"]["rollout"]["stages"][0]["iot_job"]

    # the next run asks for one canary: the sticky first one stays, the other goes back to the fleet
    state = staged(settings, [{"name": "canary", "canary": {"devices": 1}}, {"name": "fleet"}])
    deploy({**state, "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3)
    assert members(iot, CANARY) == ["core-a"]
    assert members(iot, "edge-fleet") == ["core-b", "core-c", "core-d"]


def test_a_rollout_without_a_canary_stage_gives_the_former_canaries_back_to_the_fleet(
    iot: Any, s3: Any, settings: Settings
) -> None:
    """After a canary run, a plain run (one fleet stage) must reach the former canaries too: left
    in the canary group they would miss the version, and a core in both groups fails a deployment
    that pins another version than the canary group's (seen: a plain ./scripts/run after
    ./scripts/run --devices 3 --canary 1 failed with "conflicting pinned versions")."""
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c")
    gg = FakeGreengrass()
    deploy({**staged(settings), "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3)
    assert members(iot, CANARY) == ["core-a", "core-b"]
    out = deploy({**plain(settings), "components": COMPONENTS}, greengrass=gg, iot=iot, s3=s3)
    assert members(iot, CANARY) == [] and members(iot, "edge-fleet") == ["core-a", "core-b", "core-c"]
    assert (out["thing_group"], out["device_count"]) == ("edge-fleet", 3)
    assert gg.deployments[-1]["targetArn"].endswith("thinggroup/edge-fleet")


def test_a_stage_naming_the_canary_group_keeps_its_members_and_no_group_is_no_error(
    iot: Any, s3: Any, settings: Settings
) -> None:
    from lambdas.core.rollout import return_former_canaries

    rollout = staged(settings, [{"name": "pilot", "thing_group": CANARY}, {"name": "fleet"}])["config"][
        "rollout"
    ]
    assert return_former_canaries(iot, rollout) == []  # this rollout uses the canary group itself
    assert (
        return_former_canaries(iot, plain(settings)["config"]["rollout"]) == []
    )  # the canary group does not exist: nothing to do


def test_missing_canary_group_is_a_clear_error(iot: Any, s3: Any, settings: Settings) -> None:
    from lambdas.core.exceptions import ConfigurationError

    add_things(iot, "core-a")
    with pytest.raises(ConfigurationError, match=f"canary thing group '{CANARY}' does not exist"):
        deploy({**staged(settings), "components": COMPONENTS}, greengrass=FakeGreengrass(), iot=iot, s3=s3)


def _checked(iot: Any, s3: Any, settings: Settings, results: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """Deploys the canary stage to core-a/core-b, then checks with the devices' results."""
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c", "core-d")
    state = {**staged(settings), "components": COMPONENTS}
    gg = FakeGreengrass()
    state["deployment"] = deploy(state, greengrass=gg, iot=iot, s3=s3)
    dep = state["deployment"]["deployment_id"]
    for thing, status in results.items():
        detailed = "FAILED_ROLLBACK_COMPLETE" if status == "FAILED" else "SUCCESSFUL"
        gg.effective[thing] = [effective(dep, status, detailed)]
    return state, gg


def test_a_failure_within_the_threshold_waits_for_every_device(iot: Any, s3: Any, settings: Settings) -> None:
    state, gg = _checked(iot, s3, settings, {"core-a": "FAILED"})
    first = check_deployment(state, greengrass=gg, iot=iot, s3=s3)
    assert first["status"] == "IN_PROGRESS" and first["counts"]["failed"] == 1  # 50 % is not over 50
    gg.effective["core-b"] = [effective(state["deployment"]["deployment_id"], "SUCCEEDED", "SUCCESSFUL")]
    state["deployment_status"] = check_deployment(state, greengrass=gg, iot=iot, s3=s3)
    assert state["deployment_status"]["status"] == "SUCCEEDED"
    assert state["deployment_status"]["counts"]["failed"] == 1

    # no verification failed: 1 of 2 is within 50 %, the stage passes and the fleet stage follows
    state["verification"] = {"counts": {"targeted": 1, "verified": 1, "failed": 0}}
    write_detail(
        s3,
        state["config"],
        VERIFICATION,
        {
            "devices": [
                {"thing": "core-b", "passed": True, "sent": 5, "matched": 5, "latency_ms": {"p50": 2.0}}
            ]
        },
    )
    out = evaluate_stage(state, s3=s3)
    assert_selectable("evaluate_stage", out)
    assert (out["passed"], out["more"], out["index"], out["count"], out["bake_s"]) == (True, True, 1, 2, 5)
    (row,) = out["stages"]
    assert row["name"] == "canary" and row["thing_group"] == CANARY and row["status"] == "SUCCEEDED"
    assert (row["targeted"], row["succeeded"], row["failed"], row["verified"]) == (2, 1, 1, 1)
    detail = json.loads(s3.get_object(Bucket=BUCKET, Key=out["devices_uri"].split("/", 3)[3])["Body"].read())
    devices = {d["thing"]: d for d in detail["stages"][0]["devices"]}
    assert devices["core-a"]["stage"] == "canary" and devices["core-a"]["status"] == "FAILED"
    # the next stage rewrites verification.json: the stage's own figures stay with its devices
    assert devices["core-b"]["verified"] is True and devices["core-b"]["verification"]["matched"] == 5
    assert "verification" not in devices["core-a"]


def test_a_failed_verification_over_the_threshold_stops_the_rollout(
    iot: Any, s3: Any, settings: Settings
) -> None:
    state, gg = _checked(iot, s3, settings, {"core-a": "SUCCEEDED", "core-b": "FAILED"})
    state["deployment_status"] = check_deployment(state, greengrass=gg, iot=iot, s3=s3)
    state["verification"] = {"counts": {"targeted": 1, "verified": 0, "failed": 1}}
    out = evaluate_stage(state, s3=s3)
    assert (out["passed"], out["more"], out["index"]) == (False, False, 0)
    assert out["stages"][0]["status"] == "FAILED" and out["stages"][0]["failed"] == 2
    assert "stage canary" in out["cause"] and "2 of 2" in out["cause"] and "threshold" in out["cause"]


def test_over_the_threshold_the_check_stops_at_once(iot: Any, s3: Any, settings: Settings) -> None:
    stages = [{"name": "canary", "canary": {"devices": 2}, "failure_threshold_percent": 0}, {"name": "fleet"}]
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c")
    state = {**staged(settings, stages), "components": COMPONENTS}
    gg = FakeGreengrass()
    state["deployment"] = deploy(state, greengrass=gg, iot=iot, s3=s3)
    gg.effective["core-a"] = [
        effective(state["deployment"]["deployment_id"], "FAILED", "FAILED_ROLLBACK_COMPLETE")
    ]
    with pytest.raises(DeploymentFailed, match="core-a"):
        check_deployment(state, greengrass=gg, iot=iot, s3=s3)


def _lkg(s3: Any, group: str, version: str) -> None:
    body = {"execution": "before", "components": {"com.example.test.Model": {"componentVersion": version}}}
    s3.put_object(Bucket=BUCKET, Key=f"state/{group}/last-known-good.json", Body=json.dumps(body).encode())


def test_rollback_touches_only_the_groups_that_got_the_new_version(
    iot: Any, s3: Any, settings: Settings
) -> None:
    """The canary stage failed: its group gets the fleet's last known good (it has none of its own);
    the fleet group, which never received the new version, gets no deployment at all."""
    state, gg = _checked(iot, s3, settings, {"core-a": "FAILED", "core-b": "FAILED"})
    _lkg(s3, "edge-fleet", "1.0.1")
    with pytest.raises(DeploymentFailed) as info:
        check_deployment(state, greengrass=gg, iot=iot, s3=s3)
    state["error"] = {"Error": "DeploymentFailed", "Cause": str(info.value)}
    assert rollback_groups(state) == [CANARY]
    before = len(gg.deployments)
    out = rollback(state, s3=s3, greengrass=gg, iot=iot)
    assert_selectable("rollback", out)
    (request,) = gg.deployments[before:]
    assert request["targetArn"].endswith(f"thinggroup/{CANARY}")
    assert request["components"] == {"com.example.test.Model": {"componentVersion": "1.0.1"}}
    assert "never received the new version" in out["cause"] and "fleet" in out["cause"]
    canary_row, fleet_row = out["rollout"]["stages"]
    assert (canary_row["status"], canary_row["failed"], canary_row["targeted"]) == ("FAILED", 2, 2)
    assert (fleet_row["status"], fleet_row["deployment_id"]) == ("SKIPPED", None)


def test_rollback_after_the_fleet_stage_restores_both_groups(s3: Any, iot: Any, settings: Settings) -> None:
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a")
    _lkg(s3, "edge-fleet", "1.0.1")
    _lkg(s3, CANARY, "1.0.2")
    state = staged(settings)
    state["rollout"] = {
        "index": 1,
        "count": 2,
        "stages": [
            {"name": "canary", "thing_group": CANARY, "deployment_id": "dep-1", "status": "SUCCEEDED"}
        ],
    }
    state["deployment"] = {
        "deployment_id": "dep-2",
        "thing_group": "edge-fleet",
        "stage": 1,
        "device_count": 1,
    }
    state["error"] = {"Error": "VerificationFailed", "Cause": "core-a: no answer"}
    gg = FakeGreengrass()
    out = rollback(state, s3=s3, greengrass=gg, iot=iot)
    restored = {r["targetArn"].rsplit("/", 1)[1]: r["components"] for r in gg.deployments}
    assert restored == {
        CANARY: {"com.example.test.Model": {"componentVersion": "1.0.2"}},
        "edge-fleet": {"com.example.test.Model": {"componentVersion": "1.0.1"}},
    }
    assert [r["status"] for r in out["rollout"]["stages"]] == ["SUCCEEDED", "FAILED"]


def both_stages_verified(settings: Settings) -> dict[str, Any]:
    """Promote's input after a canary stage (dep-1) and the fleet stage (dep-2) both succeeded."""
    state = staged(settings)
    state.update(
        components=COMPONENTS,
        registry={"model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/m/1"},
        deployment={"deployment_id": "dep-2", "thing_group": "edge-fleet"},
        rollout={
            "index": 2,
            "count": 2,
            "stages": [
                {"name": "canary", "thing_group": CANARY, "deployment_id": "dep-1", "status": "SUCCEEDED"},
                {
                    "name": "fleet",
                    "thing_group": "edge-fleet",
                    "deployment_id": "dep-2",
                    "status": "SUCCEEDED",
                },
            ],
        },
    )
    return state


def test_promote_records_last_known_good_for_every_stage_group(s3: Any, settings: Settings) -> None:
    state = both_stages_verified(settings)
    state["registry"]["approval_status"] = "Approved"
    sagemaker, _ = stubbed("sagemaker")
    promote(state, s3=s3, sagemaker=sagemaker)
    for group, deployment_id in ((CANARY, "dep-1"), ("edge-fleet", "dep-2")):
        body = s3.get_object(Bucket=BUCKET, Key=f"state/{group}/last-known-good.json")["Body"].read()
        assert json.loads(body)["deployment_id"] == deployment_id


def test_an_offline_device_within_the_threshold_is_named_and_the_stage_goes_on(
    iot: Any, s3: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A canary killed mid-rollout: at the time budget it is counted failed (TIMED_OUT, with its last
    contact) instead of stalling the stage; 1 of 4 is within a 25 % threshold, so the stage passes."""
    import lambdas.core.deployment as deployment_module

    clock = {"now": 1_800_000_000.0}
    monkeypatch.setattr(deployment_module.time, "time", lambda: clock["now"])
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c", "core-d", "core-e")
    stages = [
        {"name": "canary", "canary": {"devices": 4}, "failure_threshold_percent": 25},
        {"name": "fleet"},
    ]
    state = {**staged(settings, stages), "components": COMPONENTS}
    state["config"]["poll"]["deployment"] = {"interval_s": 10, "timeout_s": 300, "max_polls": 10_000}
    gg = FakeGreengrass()
    state["deployment"] = deploy(state, greengrass=gg, iot=iot, s3=s3)
    dep = state["deployment"]["deployment_id"]
    gg.effective = {t: [effective(dep, "SUCCEEDED", "SUCCESSFUL")] for t in ("core-a", "core-b", "core-c")}
    gg.effective["core-d"] = [{**effective(dep, "IN_PROGRESS"), "modifiedTimestamp": clock["now"] + 2}]
    clock["now"] += 299
    assert check_deployment(state, greengrass=gg, iot=iot, s3=s3)["status"] == "IN_PROGRESS"
    clock["now"] += 1
    out = check_deployment(state, greengrass=gg, iot=iot, s3=s3)
    assert out["status"] == "SUCCEEDED" and out["counts"]["failed"] == 1 and out["counts"]["succeeded"] == 3
    (offline,) = out["unfinished"]
    assert offline["thing"] == "core-d" and offline["status"] == "TIMED_OUT"
    assert "last contact" in offline["detail"] and "(298 s ago): offline or stalled?" in offline["detail"]


@pytest.mark.parametrize("stages", [None, STAGES], ids=["single-stage", "two-stage"])
def test_a_promote_failure_after_the_last_stage_rolls_back_every_stage_that_deployed(
    iot: Any, s3: Any, settings: Settings, stages: list[dict[str, Any]] | None
) -> None:
    """Promote fails after the stage loop: EvaluateStage has moved ``$.rollout.index`` past the
    last stage (index == count). Rollback must not look that stage up; every group that deployed
    gets its last known good back, and the rows stay as the stages finished."""
    iot.create_thing_group(thingGroupName=CANARY)
    add_things(iot, "core-a", "core-b", "core-c")
    _lkg(s3, "edge-fleet", "1.0.1")
    state: dict[str, Any] = {
        **configure(
            {"input": {"rollout": {"stages": stages}} if stages else {}, "execution": "exec-1"},
            settings=settings,
            s3=None,
        ),
        "components": COMPONENTS,
    }
    gg = FakeGreengrass()
    while True:  # the stage loop as the state machine runs it: Deploy → CheckDeployment → EvaluateStage
        state["deployment"] = deploy(state, greengrass=gg, iot=iot, s3=s3)
        dep = state["deployment"]["deployment_id"]
        gg.effective = {
            t: [effective(dep, "SUCCEEDED", "SUCCESSFUL")] for t in ("core-a", "core-b", "core-c")
        }
        state["deployment_status"] = check_deployment(state, greengrass=gg, iot=iot, s3=s3)
        state["verification"] = {"counts": {"targeted": 1, "verified": 1, "failed": 0}}
        state["rollout"] = evaluate_stage(state, s3=s3)
        if not state["rollout"]["more"]:
            break
    count = len(stages or [None])
    assert (state["rollout"]["index"], state["rollout"]["count"]) == (count, count)
    state["error"] = {"Error": "PromotionFailed", "Cause": "cannot approve arn:...: AccessDenied"}
    before = len(gg.deployments)
    out = rollback(state, s3=s3, greengrass=gg, iot=iot)
    assert_selectable("rollback", out)
    restored = [r["targetArn"].rsplit("/", 1)[1] for r in gg.deployments[before:]]
    assert restored == ([CANARY, "edge-fleet"] if stages else ["edge-fleet"])
    assert all(
        r["components"] == {"com.example.test.Model": {"componentVersion": "1.0.1"}}
        for r in gg.deployments[before:]
    )
    assert [r["status"] for r in out["rollout"]["stages"]] == ["SUCCEEDED"] * count
    assert out["rollout"]["index"] == count and out["error"] == "PromotionFailed"
    assert "never received" not in out["cause"] and "AccessDenied" in out["cause"]


class RecordingSageMaker:
    """DescribeModelPackage / UpdateModelPackage, keeping what the update asked for."""

    def __init__(self) -> None:
        self.update: dict[str, Any] = {}

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        return {"CustomerMetadataProperties": {"onnx_uri": "s3://b/m.onnx"}}

    def update_model_package(self, **kwargs: Any) -> dict[str, Any]:
        self.update = kwargs
        return {"ModelPackageArn": kwargs["ModelPackageArn"]}


def test_approving_a_staged_rollout_names_every_group_in_a_value_sagemaker_accepts(
    s3: Any, settings: Settings
) -> None:
    """Promote notes the verified thing groups in the package's customer metadata. A value may not
    hold a comma (the local cloud's UpdateModelPackage refused "canary, fleet", as AWS does)."""
    state = both_stages_verified(settings)
    sagemaker = RecordingSageMaker()
    assert promote(state, s3=s3, sagemaker=sagemaker)["approval_status"] == "Approved"
    metadata = sagemaker.update["CustomerMetadataProperties"]
    assert metadata["verified_thing_group"] == f"{CANARY} edge-fleet"
    assert metadata["onnx_uri"] == "s3://b/m.onnx" and metadata["verified_deployment"] == "dep-2"
    assert f"thing group {CANARY}, edge-fleet" in sagemaker.update["ApprovalDescription"]
    # SageMaker's rules for the map (the service model's, as the local cloud applies them)
    assert metadata_violations(metadata) == []


def test_a_long_list_of_groups_is_cut_to_whole_names_within_the_limit() -> None:
    from lambdas.core.promote import METADATA_VALUE_CHARS, metadata_list

    names = [f"group-{i:03d}-" + "x" * 40 for i in range(10)]
    value = metadata_list(names)
    assert len(value) <= METADATA_VALUE_CHARS and value.endswith(" +6")
    assert value.split(" ")[:-1] == names[:4]
    assert metadata_list(["only"]) == "only"
