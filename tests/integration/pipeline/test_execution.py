"""Executions on the local cloud with the real handlers: prepare and package stages, failure paths."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Deployed, exited_states

pytestmark = pytest.mark.integration


def test_bad_input_fails_at_configure_with_a_clear_cause(deployed: Deployed) -> None:
    execution = deployed.run(
        {"hyperparameters": {"num_round": "many"}, "poll": {"training": {"interval_s": 0}}}
    )
    assert execution["status"] == "FAILED"
    assert execution["error"] == "InvalidInput"
    assert (
        "$.hyperparameters.num_round" in execution["cause"]
        and "$.poll.training.interval_s" in execution["cause"]
    )


def test_prepare_and_package_reach_a_registry_entry_and_deployable_components(
    deployed: Deployed, trained: dict[str, Any]
) -> None:
    execution, events = trained["execution"], trained["events"]
    states = exited_states(events)
    for state in (
        "Configure",
        "StartTraining",
        "DescribeTraining",
        "ExportOnnx",
        "QualityGate",
        "RegisterModel",
        "PublishComponents",
    ):
        assert state in states, (state, states, execution.get("cause"))
    # No devices in the group: the pipeline stops at Deploy, and says why.
    assert execution["status"] == "FAILED"
    assert execution["error"] == "NoDevices", execution.get("cause")
    assert deployed.thing_group in execution["cause"] and "nothing was rolled back" in execution["cause"]

    sm = deployed.client("sagemaker")
    packages = sm.list_model_packages(ModelPackageGroupName=deployed.model_package_group)[
        "ModelPackageSummaryList"
    ]
    assert len(packages) == 1
    package = sm.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert (
        metadata["onnx_uri"].startswith(f"s3://{deployed.bucket}/artifacts/models/")
        and len(metadata["onnx_sha256"]) == 64
    )

    gg = deployed.client("greengrassv2")
    account = deployed.client("sts").get_caller_identity()["Account"]
    for kind in ("Model", "Inference"):
        name = f"{deployed.component_prefix}.{kind}"
        versions = gg.list_component_versions(
            arn=f"arn:aws:greengrass:us-east-1:{account}:components:{name}"
        )["componentVersions"]
        assert len(versions) == 1, name
        status = gg.describe_component(arn=versions[0]["arn"])["status"]["componentState"]
        assert status == "DEPLOYABLE", (name, status)


def test_deploy_only_path_skips_training_and_reuses_components(
    deployed: Deployed, trained: dict[str, Any], fast_input: dict[str, Any]
) -> None:
    sm = deployed.client("sagemaker")
    (package,) = sm.list_model_packages(ModelPackageGroupName=deployed.model_package_group)[
        "ModelPackageSummaryList"
    ]
    execution = deployed.run({**fast_input, "model_package_arn": package["ModelPackageArn"]})
    states = exited_states(deployed.history(execution["executionArn"]))
    assert "StartTraining" not in states and "PublishComponents" in states
    assert execution["error"] == "NoDevices"
    publish = next(
        e
        for e in deployed.history(execution["executionArn"])
        if e.get("stateExitedEventDetails", {}).get("name") == "PublishComponents"
    )
    output = json.loads(publish["stateExitedEventDetails"]["output"])
    assert output["components"]["model"]["reused"] and output["components"]["inference"]["reused"]
    assert output["components"]["model"]["version"] == "1.0.1"


def test_awaiting_approval_stops_after_registration(
    deployed: Deployed, trained: dict[str, Any], fast_input: dict[str, Any]
) -> None:
    sm = deployed.client("sagemaker")
    (package,) = sm.list_model_packages(ModelPackageGroupName=deployed.model_package_group)[
        "ModelPackageSummaryList"
    ]
    execution = deployed.run(
        {**fast_input, "model_package_arn": package["ModelPackageArn"], "auto_approve": False}
    )
    assert execution["status"] == "SUCCEEDED"
    states = exited_states(deployed.history(execution["executionArn"]))
    assert states[-1] == "AwaitingApproval" and "PublishComponents" not in states


def test_failed_training_job_reports_its_failure_reason(
    deployed: Deployed, trained: dict[str, Any], fast_input: dict[str, Any]
) -> None:
    execution = deployed.run({**fast_input, "dataset": {"target": "no_such_column"}})
    assert execution["status"] == "FAILED" and execution["error"] == "TrainingFailed"
    assert "no_such_column" in execution["cause"] and "CloudWatch" in execution["cause"]


def test_quality_gate_rejects_with_the_metric_that_failed(
    deployed: Deployed, trained: dict[str, Any], fast_input: dict[str, Any]
) -> None:
    execution = deployed.run({**fast_input, "quality": {"max": {"validation:rmse": 1.0}}})
    assert execution["status"] == "FAILED" and execution["error"] == "ModelRejected"
    assert "validation:rmse=" in execution["cause"] and "> max 1" in execution["cause"]
    states = exited_states(deployed.history(execution["executionArn"]))
    assert "RegisterModel" not in states
