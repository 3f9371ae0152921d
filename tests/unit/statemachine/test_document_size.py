"""The state document stays within Step Functions' limits at 500 devices (issue 10).

The walk (``dataflow``) moves the document through the pipeline's own ASL exactly as Step
Functions does, calling the real Lambda cores over a simulated fleet (``simulated``), and measures
every state's input and output, every task's raw result and every Lambda payload. With per-device
detail in S3 the document does not grow with the fleet: at 500 devices every state stays far below
256 KiB, and every Fail cause still names devices with a reason a person can act on.

Measured with this walk (largest state, bytes), 1 device → 500 devices:

============== ======================================== ===============================
fleet          before (device lists in the document)    after (detail in S3)
============== ======================================== ===============================
healthy        6,362 → 176,547                          6,492 → 7,419
deploy_fails   5,227 → ``States.DataLimitExceeded``      5,607 → 11,091
               (Rollback output 321,605)
never_connect  3,851 → 69,236 (the cause names nobody)   4,897 → 8,841
silent         5,165 → 221,244, an 80 KB Fail cause      5,758 → 7,630
rollback_fails 6,137 → ``States.DataLimitExceeded``      6,531 → 12,015
============== ======================================== ===============================

(DescribeExecution keeps 32,768 characters of a cause; the largest cause at 500 devices is now
8.7 K characters, and every one names ten devices with their reasons.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from .dataflow import LAMBDA_PAYLOAD_LIMIT_BYTES, STATE_LIMIT_BYTES, Run, run
from .simulated import MODES, Fleet, aws_clients

#: Characters of a Fail state's cause that DescribeExecution returns.
CAUSE_LIMIT_CHARS = 32_768
#: How much the largest state may grow from 1 device to 500: the handful of named devices.
GROWTH_LIMIT_BYTES = 8_192


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


def walk(asl: dict[str, Any], count: int, mode: str) -> tuple[Run, Fleet]:
    """One execution over ``count`` devices: the training path when healthy, else deploy-only."""
    fleet = Fleet(count, mode, *aws_clients())
    execution_input: dict[str, Any] = {
        "poll": {"deployment": {"interval_s": 10, "max_polls": 3}},
        "verification": {"requests": 10, "timeout_s": 20},
    }
    if mode != "healthy":
        execution_input["model_package_arn"] = fleet.register_given_model()
    result = run(
        asl,
        execution_input,
        lambdas=fleet.lambdas(),
        services=fleet.services(),
        execution=f"run-{mode}-{count}",
    )
    return result, fleet


def largest(result: Run) -> int:
    return max(max(s.input_bytes, s.output_bytes, s.result_bytes or 0) for s in result.steps)


def assert_within_limits(result: Run) -> None:
    for step in result.steps:
        assert step.input_bytes < STATE_LIMIT_BYTES, step
        assert step.output_bytes < STATE_LIMIT_BYTES, step
        assert (step.result_bytes or 0) < STATE_LIMIT_BYTES, step
        assert (step.parameters_bytes or 0) < min(STATE_LIMIT_BYTES, LAMBDA_PAYLOAD_LIMIT_BYTES), step
    assert len(result.cause or "") <= CAUSE_LIMIT_CHARS


@pytest.mark.parametrize("mode", MODES)
def test_500_devices_stay_within_the_limits_at_every_state(aws: None, asl: dict[str, Any], mode: str) -> None:
    one, _ = walk(asl, 1, mode)
    many, fleet = walk(asl, 500, mode)
    assert_within_limits(many)
    assert (many.status == "SUCCEEDED") is (mode == "healthy"), (many.error, many.cause)
    assert many.path == one.path, "the fleet's size changed the way through the state machine"
    assert largest(many) - largest(one) < GROWTH_LIMIT_BYTES, (largest(one), largest(many))
    assert largest(many) < STATE_LIMIT_BYTES // 8, many.largest()
    # What the handlers did not carry in the document, they wrote to S3.
    detail = fleet.s3.list_objects_v2(Bucket=fleet.settings.bucket, Prefix="state/executions/")
    assert {o["Key"].rsplit("/", 1)[1] for o in detail.get("Contents", [])} >= {
        "deployment-targets.json",
        "deployment-status.json",
    }


def test_a_healthy_fleet_of_500_is_verified_and_promoted(aws: None, asl: dict[str, Any]) -> None:
    result, fleet = walk(asl, 500, "healthy")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    for state in (
        "Configure", "StartTraining", "WaitTraining", "DescribeTraining", "TrainingDone?", "CountTrainingPoll",
        "ExportOnnx", "QualityGate", "RegisterModel", "ShouldDeploy?", "PublishComponents",
        "ComponentsDeployable?", "CountComponentsPoll", "WaitComponents", "CheckComponents", "Deploy",
        "WaitDeployment", "CheckDeployment", "DeploymentDone?", "CountDeploymentPoll", "VerifyStage?",
        "VerifyOnDevice", "EvaluateStage", "StageDone?", "Promote", "PipelineSucceeded",
    ):  # fmt: skip
        assert state in result.path, state
    output = result.output
    assert output["deployment"]["device_count"] == 500
    assert output["deployment_status"]["counts"]["succeeded"] == 500
    assert output["verification"]["counts"] == {
        "targeted": 500, "verified": 500, "failed": 0, "requests_sent": 5000, "requests_matched": 5000
    }  # fmt: skip
    assert fleet.greengrass.asked.count(fleet.things[1]) == 1, "a finished device is asked about once"
    assert fleet.greengrass.asked.count(fleet.things[0]) == 2


@pytest.mark.parametrize(
    ("mode", "error", "reason"),
    [
        ("deploy_fails", "DeploymentFailed", "FAILED (FAILED_ROLLBACK_COMPLETE): Component"),
        ("never_connect", "DeploymentTimedOut", "PENDING (never connected"),
        ("silent", "VerificationFailed", "0/10 matched (no answer within"),
    ],
)
def test_the_fail_cause_names_devices_with_a_reason(
    aws: None, asl: dict[str, Any], mode: str, error: str, reason: str
) -> None:
    result, fleet = walk(asl, 500, mode)
    assert result.status == "FAILED" and result.path[-3:] == ["Rollback", "RolloutStopped", "RolledBack"]
    assert result.error == error
    cause = result.cause or ""
    assert f"{fleet.things[0]}: {reason}" in cause, cause
    assert fleet.things[9] in cause and fleet.things[10] not in cause
    assert "and 490 more (every device: s3://" in cause and "Rollback:" in cause


def test_a_failed_rollback_still_names_the_failed_devices(aws: None, asl: dict[str, Any]) -> None:
    result, fleet = walk(asl, 500, "rollback_fails")
    assert result.path[-1] == "RollbackFailed" and result.error == "RollbackFailed"
    assert "could not redeploy" in (result.cause or "") and fleet.things[0] in (result.cause or "")
