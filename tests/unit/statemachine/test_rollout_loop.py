"""The stage loop walked through the pipeline's own ASL with the real handler cores (issue 12):
two stages deploy, verify and bake one after the other, each writes its row, and the loop ends at
Promote once ``$.rollout.index`` reaches ``$.rollout.count``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from lambdas.core.exceptions import PromotionFailed

from .dataflow import run
from .simulated import GROUP, Fleet, aws_clients


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def test_two_stages_run_in_order_and_promote_both_groups(aws: None, asl: dict[str, Any]) -> None:
    fleet = Fleet(6, "healthy", *aws_clients())
    fleet.iot.groups = {"lab": fleet.things[:2], GROUP: fleet.things[2:]}
    document = {
        "model_package_arn": fleet.register_given_model(),
        "poll": {"deployment": {"interval_s": 10, "max_polls": 5}},
        "verification": {"requests": 2, "timeout_s": 5},
        "rollout": {
            "stages": [
                {"name": "lab", "thing_group": "lab", "bake_s": 30},
                {"name": "fleet", "verify": False},
            ]
        },
    }
    result = run(asl, document, lambdas=fleet.lambdas(), execution="run-two-stages")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    path = result.path
    assert path.count("Deploy") == 2 and path.count("EvaluateStage") == 2
    assert path.count("VerifyOnDevice") == 1  # the fleet stage said verify: false
    assert path.count("Bake") == 1 and path.count("NextStage") == 1  # no bake after the last stage
    assert path.index("Bake") < path.index("NextStage") < len(path) - path[::-1].index("Deploy") - 1
    assert path[-2:] == ["Promote", "PipelineSucceeded"]
    rollout = result.output["rollout"]
    assert (rollout["index"], rollout["count"]) == (2, 2)
    rows = [
        (r["name"], r["thing_group"], r["targeted"], r["verified"], r["status"]) for r in rollout["stages"]
    ]
    assert rows == [("lab", "lab", 2, 2, "SUCCEEDED"), ("fleet", GROUP, 4, None, "SUCCEEDED")]
    targets = [d["targetArn"].rsplit("/", 1)[1] for d in fleet.greengrass.deployments]
    assert targets == ["lab", GROUP]
    # each stage's deployment loop counted its own polls from zero
    assert result.output["polls"]["deployment"]["count"] <= 1
    keys = {o["Key"] for o in fleet.s3.list_objects_v2(Bucket=fleet.settings.bucket)["Contents"]}
    assert {f"state/{group}/last-known-good.json" for group in ("lab", GROUP)} <= keys


def test_a_promote_failure_after_the_last_stage_rolls_back_both_groups(
    aws: None, asl: dict[str, Any]
) -> None:
    """Promote's Catch hands Rollback ``$.rollout.index`` == count (past the last stage): the
    rollback redeploys both groups and ends RolledBack, not RollbackFailed."""
    fleet = Fleet(4, "healthy", *aws_clients())
    fleet.iot.groups = {"lab": fleet.things[:2], GROUP: fleet.things[2:]}
    document = {
        "model_package_arn": fleet.register_given_model(),
        "poll": {"deployment": {"interval_s": 10, "max_polls": 5}},
        "verification": {"requests": 2, "timeout_s": 5},
        "rollout": {"stages": [{"name": "lab", "thing_group": "lab"}, {"name": "fleet", "verify": False}]},
    }

    def refuse(event: dict[str, Any]) -> dict[str, Any]:
        raise PromotionFailed("cannot approve the model package: AccessDeniedException")

    lambdas = {**fleet.lambdas(), "promote": refuse}
    result = run(asl, document, lambdas=lambdas, execution="run-promote-fails")
    assert result.path[-4:] == ["Promote", "Rollback", "RolloutStopped", "RolledBack"], result.cause
    assert result.error == "PromotionFailed" and "AccessDeniedException" in (result.cause or "")
    targets = [d["targetArn"].rsplit("/", 1)[1] for d in fleet.greengrass.deployments]
    assert targets == ["lab", GROUP, "lab", GROUP]  # two stages, then both rolled back
