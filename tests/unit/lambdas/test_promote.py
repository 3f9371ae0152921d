"""Promote and Rollback: last known good written, approved, and redeployed on failure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.core.exceptions import RollbackFailed
from lambdas.core.promote import original_failure, promote, read_last_known_good, rollback

from .conftest import BUCKET, assert_selectable, stubbed
from .fakes import FakeGreengrass
from .test_deployment import COMPONENTS, add_things

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/edge-models/3"


def success_event(config: dict[str, Any], deployment_id: str = "d-1") -> dict[str, Any]:
    return {
        "config": config,
        "components": COMPONENTS,
        "registry": {"model_package_arn": PACKAGE, "approval_status": "PendingManualApproval"},
        "deployment": {"deployment_id": deployment_id, "thing_group": "edge-fleet"},
        "verification": {"summary": "1 of 1 device(s) verified"},
    }


def test_promote_records_last_known_good_and_approves(s3: Any, config: dict[str, Any]) -> None:
    sagemaker, stub = stubbed("sagemaker")
    stub.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "edge-models",
            "ModelPackageArn": PACKAGE,
            "CreationTime": "2026-01-01T00:00:00Z",
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "CustomerMetadataProperties": {"onnx_uri": "s3://b/m.onnx"},
        },
        {"ModelPackageName": PACKAGE},
    )
    stub.add_response(
        "update_model_package",
        {"ModelPackageArn": PACKAGE},
        {
            "ModelPackageArn": PACKAGE,
            "ModelApprovalStatus": "Approved",
            "ApprovalDescription": "verified on every device of thing group edge-fleet (deployment d-1)",
            "CustomerMetadataProperties": {
                "onnx_uri": "s3://b/m.onnx",
                "verified_thing_group": "edge-fleet",
                "verified_deployment": "d-1",
            },
        },
    )
    out = promote(success_event(config), s3=s3, sagemaker=sagemaker)
    stub.assert_no_pending_responses()
    assert_selectable("promote", out)
    assert out["approval_status"] == "Approved"
    assert out["last_known_good_uri"] == f"s3://{BUCKET}/state/edge-fleet/last-known-good.json"
    lkg = read_last_known_good(s3, config, "edge-fleet")
    assert lkg["components"]["com.example.test.Model"] == {"componentVersion": "1.0.3"}
    assert s3.head_object(Bucket=BUCKET, Key="state/edge-fleet/history/d-1.json")


def test_original_failure_reads_lambda_causes() -> None:
    cause = json.dumps({"errorType": "DeploymentFailed", "errorMessage": "core-b: FAILED", "stackTrace": []})
    assert original_failure({"Error": "DeploymentFailed", "Cause": cause}) == (
        "DeploymentFailed",
        "core-b: FAILED",
    )
    assert original_failure({"Error": "States.Timeout", "Cause": "took too long"}) == (
        "States.Timeout",
        "took too long",
    )
    assert original_failure(None) == ("PipelineFailed", "no cause reported")


def failure(config: dict[str, Any]) -> dict[str, Any]:
    event = success_event(config, "d-2")
    event["error"] = {
        "Error": "VerificationFailed",
        "Cause": json.dumps({"errorMessage": "core-a: 0/10 matched"}),
    }
    return event


def test_rollback_redeploys_last_known_good(s3: Any, config: dict[str, Any], iot: Any) -> None:
    add_things(iot, "core-a")
    sagemaker, _ = stubbed("sagemaker")
    known_good = {**COMPONENTS, "model": {"name": "com.example.test.Model", "version": "1.0.2"}}
    promote(
        {
            **success_event(config),
            "components": known_good,
            "registry": {"model_package_arn": PACKAGE, "approval_status": "Approved"},
        },
        s3=s3,
        sagemaker=sagemaker,
    )
    gg = FakeGreengrass()
    out = rollback(failure(config), s3=s3, greengrass=gg, iot=iot)
    assert_selectable("rollback", out)
    assert out["error"] == "VerificationFailed" and out["action"] == "redeployed"
    assert out["cause"].startswith("core-a: 0/10 matched | Rollback: redeployed last known good")
    assert gg.deployments[0]["components"]["com.example.test.Model"] == {"componentVersion": "1.0.2"}
    assert gg.deployments[0]["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"


def test_rollback_without_last_known_good_removes_components(
    s3: Any, config: dict[str, Any], iot: Any
) -> None:
    gg = FakeGreengrass()
    out = rollback(failure(config), s3=s3, greengrass=gg, iot=iot)
    assert out["action"] == "removed" and gg.deployments[0]["components"] == {}


def test_rollback_when_nothing_was_deployed(s3: Any, config: dict[str, Any]) -> None:
    event = failure(config)
    del event["deployment"]
    out = rollback(event, s3=s3, greengrass=FakeGreengrass(), iot=None)
    assert_selectable("rollback", out)
    assert out["action"] == "none" and "nothing was rolled back" in out["cause"]


def test_rollback_that_cannot_deploy_keeps_the_original_cause(
    s3: Any, config: dict[str, Any], iot: Any
) -> None:
    config["deployment"]["thing_group"] = "edge-fleet"
    event = failure(config)
    event["deployment"]["thing_group"] = "gone"
    with pytest.raises(RollbackFailed, match="core-a: 0/10 matched"):
        rollback(event, s3=s3, greengrass=FakeGreengrass(), iot=iot)
