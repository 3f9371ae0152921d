"""IAM of the synthesized roles against AWS's own rules that moto and cfn-lint do not check.

Greengrass V2 actions have *dependent actions* (``infra.permissions.GREENGRASS_DEPENDENT_ACTIONS``,
from the Service Authorization Reference): without them the call is denied on AWS while every
local run passes, since the local cloud's greengrassv2 does not evaluate IAM.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

pytestmark = pytest.mark.infra


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants_by_role(template: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """role logical id -> action -> the resources (JSON text) it is allowed on, over every inline
    policy attached to the role."""
    grants: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        props = resource["Properties"]
        roles = [r["Ref"] for r in props.get("Roles", []) if isinstance(r, dict) and "Ref" in r]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for action in _as_list(statement["Action"]):
                for role in roles:
                    grants[role][action].extend(json.dumps(r) for r in _as_list(statement["Resource"]))
    return grants


def _role(synth, handler: str) -> str:
    """Logical id of a pipeline function's role, found through the function itself."""
    functions = synth.resources("pipeline", "AWS::Lambda::Function").values()
    name = f"mlops-edge-pipeline-{handler.replace('_', '-')}"
    (props,) = [f["Properties"] for f in functions if f["Properties"]["FunctionName"] == name]
    return props["Role"]["Fn::GetAtt"][0]


def test_check_deployment_holds_list_effective_deployments_dependent_actions(synth) -> None:
    grants = grants_by_role(synth.templates["pipeline"])[_role(synth, "check_deployment")]
    assert "greengrass:ListEffectiveDeployments" in grants
    for action in (
        "iot:DescribeJob",
        "iot:DescribeJobExecution",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
    ):
        assert action in grants, (
            f"check_deployment lacks {action}, a dependent action of ListEffectiveDeployments"
        )
    assert any(":job/*" in r for r in grants["iot:DescribeJob"])
    assert any(":thing/*" in r for r in grants["iot:DescribeJobExecution"])
    assert all("thinggroup/mlops-edge-fleet" in r for r in grants["iot:DescribeThingGroup"])


@pytest.mark.parametrize("key", ["pipeline", "edge", "cicd"])
def test_every_greengrass_action_comes_with_its_dependent_actions_scoped(synth, key: str) -> None:
    from infra.permissions import GREENGRASS_DEPENDENT_ACTIONS, GREENGRASS_WITHOUT_DEPENDENT_ACTIONS

    for role, grants in grants_by_role(synth.templates[key]).items():
        for action in [a for a in grants if a.startswith("greengrass:")]:
            known = action in GREENGRASS_DEPENDENT_ACTIONS or action in GREENGRASS_WITHOUT_DEPENDENT_ACTIONS
            assert known, f"{action}: look up its dependent actions and add it to infra/permissions.py"
            for dependent in GREENGRASS_DEPENDENT_ACTIONS.get(action, ()):
                assert dependent in grants, f"{role} holds {action} without its dependent {dependent}"
                resources = grants[dependent]
                assert '"*"' not in resources, f"{role}: {dependent} on '*'"
                if dependent == "iot:DescribeThingGroup":
                    assert all("thinggroup/mlops-edge-fleet" in r for r in resources), resources
                else:
                    assert all(
                        ":job/*" in r or ":thing/*" in r or "thinggroup/mlops-edge-fleet" in r
                        for r in resources
                    ), (
                        dependent,
                        resources,
                    )


def test_dependent_action_table_covers_what_the_handlers_call() -> None:
    """The Greengrass calls of ``lambdas/core`` (and those a future handler is likely to add) are
    in one of the two tables, so a grant can always be checked."""
    from infra.permissions import GREENGRASS_DEPENDENT_ACTIONS, GREENGRASS_WITHOUT_DEPENDENT_ACTIONS

    for action in (
        "CreateDeployment",
        "GetDeployment",
        "CancelDeployment",
        "ListEffectiveDeployments",
        "ListCoreDevices",
        "GetCoreDevice",
        "ListInstalledComponents",
        "CreateComponentVersion",
        "DescribeComponent",
        "GetComponent",
    ):
        name = f"greengrass:{action}"
        assert (name in GREENGRASS_DEPENDENT_ACTIONS) != (name in GREENGRASS_WITHOUT_DEPENDENT_ACTIONS), name
    assert "iot:DescribeJobExecution" in GREENGRASS_DEPENDENT_ACTIONS["greengrass:ListEffectiveDeployments"]


@pytest.mark.parametrize("handler", ["deploy", "check_deployment", "verify_on_device"])
def test_handlers_that_keep_per_device_detail_may_write_it_under_the_state_prefix(
    synth, handler: str
) -> None:
    """Per-device detail lives in S3 under ``state/executions/<execution>/`` (the state document
    only carries its URI), so these handlers write and read back there, and list the prefix (a
    missing key answers 403 instead of 404 without ListBucket)."""
    grants = grants_by_role(synth.templates["pipeline"])[_role(synth, handler)]
    for action in ("s3:PutObject", "s3:GetObject"):
        assert any("state/*" in r for r in grants[action]), f"{handler} lacks {action} on state/*"
    assert "s3:ListBucket" in grants


def test_the_canary_group_exists_and_only_deploy_moves_devices_between_the_two_groups(synth) -> None:
    """Issue 12: the CDK app makes the canary group; AddThingToThingGroup/RemoveThingFromThingGroup
    are granted to Deploy alone, on exactly the fleet and canary groups (and the things)."""
    template = synth.templates["pipeline"]
    groups = {
        r["Properties"]["ThingGroupName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IoT::ThingGroup"
    }
    assert groups == {"mlops-edge-fleet", "mlops-edge-fleet-canary"}
    by_role = grants_by_role(template)
    moves = ("iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup")
    deploy = by_role[_role(synth, "deploy")]
    for action in moves:
        resources = " ".join(deploy[action])
        assert (
            "thinggroup/mlops-edge-fleet-canary" in resources and 'thinggroup/mlops-edge-fleet"' in resources
        )
        assert resources.count("thinggroup/") == 2 and "thing/*" in resources, resources
    others = [
        role
        for role, grants in by_role.items()
        if role != _role(synth, "deploy") and set(moves) & set(grants)
    ]
    assert not others, f"only Deploy may move devices between groups: {others}"
    # Rollback and the deployment check reach the canary group as well as the fleet's
    for handler, action in (("rollback", "iot:CreateJob"), ("check_deployment", "iot:DescribeThingGroup")):
        assert "thinggroup/mlops-edge-fleet-canary" in " ".join(by_role[_role(synth, handler)][action]), (
            handler
        )


def test_evaluate_stage_only_reads_and_writes_the_execution_state(synth) -> None:
    grants = grants_by_role(synth.templates["pipeline"])[_role(synth, "evaluate_stage")]
    assert {a for a in grants if not a.startswith("logs:") and not a.startswith("xray:")} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    }


def test_publish_components_writes_monitoring_files_under_the_monitoring_prefix_only(synth) -> None:
    """Issue 16: PublishComponents copies the baseline and writes context.json under
    ``state/monitoring/``; it gets no write anywhere else in the state prefix."""
    grants = grants_by_role(synth.templates["pipeline"])[_role(synth, "publish_components")]
    writes = " ".join(grants["s3:PutObject"])
    assert "state/monitoring/*" in writes
    assert all("state/monitoring/*" in r or "artifacts/components/*" in r for r in grants["s3:PutObject"])
