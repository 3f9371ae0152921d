"""moto's ASL interpreter runs real Lambda handlers and SageMaker jobs through the endpoint."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.local_cloud.conftest import wait_until
from tests.integration.local_cloud.training_support import training_job_request, upload_inputs

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("states_role_arn")]
#: Made by the ``states_role_arn`` fixture: Step Functions may assume it and invoke functions.
ROLE = "arn:aws:iam::123456789012:role/sfn"


def _run(local_cloud, definition: dict, payload: dict, timeout: float = 60) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    sm_arn = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    exec_arn = sfn.start_execution(
        stateMachineArn=sm_arn, name=f"x-{uuid.uuid4().hex[:8]}", input=json.dumps(payload)
    )["executionArn"]
    done = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=exec_arn))["status"] != "RUNNING" and d,
        timeout=timeout,
        interval=0.2,
    )
    history = sfn.get_execution_history(executionArn=exec_arn, maxResults=1000)["events"]
    return done, history


def _invoke(fn: str, payload: dict, **extra: object) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": fn, "Payload": payload},
        **extra,
    }


def test_lambda_choice_map_wait_retry_catch(local_cloud, make_function, tmp_path) -> None:  # type: ignore[no-untyped-def]
    double = make_function("double")
    flaky = make_function("flaky", env={"COUNTER_DIR": str(tmp_path)})
    reject = make_function("reject")
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": _invoke(
                double,
                {"value.$": "$.value"},
                ResultSelector={"value.$": "$.Payload.value"},
                ResultPath="$.doubled",
                Retry=[{"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 2}],
                Next="Big?",
            ),
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.doubled.value", "NumericGreaterThan": 100, "Next": "Reject"}],
                "Default": "Fanout",
            },
            "Fanout": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 0,  # unbounded: the worker pool caps concurrency per function
                "Parameters": {"value.$": "$$.Map.Item.Value"},
                "Iterator": {
                    "StartAt": "Twice",
                    "States": {
                        "Twice": {
                            "Type": "Task",
                            "Resource": double,
                            "ResultPath": "$.out",
                            "OutputPath": "$.out.value",
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.mapped",
                "Next": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Flaky"},
            "Flaky": _invoke(
                flaky,
                {"key.$": "$$.Execution.Name", "fail_times": 2},
                Retry=[
                    {"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 3}
                ],
                ResultSelector={"attempts.$": "$.Payload.attempts"},
                ResultPath="$.flaky",
                Next="Reject",
            ),
            "Reject": _invoke(
                reject,
                {"value.$": "$.doubled.value"},
                Catch=[{"ErrorEquals": ["Rejected"], "ResultPath": "$.error", "Next": "Rejected"}],
                End=True,
            ),
            "Rejected": {"Type": "Pass", "End": True},
        },
    }
    done, history = _run(local_cloud, definition, {"value": 5, "items": [1, 2, 3, 4, 5, 6]})
    assert done["status"] == "SUCCEEDED", history[-1]
    output = json.loads(done["output"])
    assert output["doubled"] == {"value": 10}
    assert output["mapped"] == [2, 4, 6, 8, 10, 12]
    assert output["flaky"] == {"attempts": 3}
    assert output["error"]["Error"] == "Rejected"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "value 10 rejected"
    types = [e["type"] for e in history]
    assert types.count("MapIterationSucceeded") == 6
    assert types.count("WaitStateExited") == 1
    failed = [e for e in history if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["Flaky", "Flaky", "Rejected"]
    assert types[-1] == "ExecutionSucceeded"


def test_uncaught_error_fails_execution(local_cloud, make_function) -> None:  # type: ignore[no-untyped-def]
    reject = make_function("reject")
    definition = {
        "StartAt": "Reject",
        "States": {
            "Reject": _invoke(reject, {"value": 1}, Next="Done"),
            "Done": {"Type": "Succeed"},
        },
    }
    done, history = _run(local_cloud, definition, {})
    assert done["status"] == "FAILED"
    assert done["error"] == "Rejected"
    assert history[-1]["type"] == "ExecutionFailed"


def test_sagemaker_request_response_and_describe_loop(local_cloud) -> None:  # type: ignore[no-untyped-def]
    s3 = local_cloud.client("s3")
    bucket = f"sfn-train-{uuid.uuid4().hex[:8]}"
    upload_inputs(s3, bucket, real=False)
    job = training_job_request("placeholder", bucket, ROLE)
    job.pop("TrainingJobName")
    definition = {
        "StartAt": "StartTraining",
        "States": {
            "StartTraining": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                "Parameters": {"TrainingJobName.$": "$.job_name", **job},
                "ResultPath": "$.created",
                "Next": "WaitTraining",
            },
            "WaitTraining": {"Type": "Wait", "Seconds": 1, "Next": "DescribeTraining"},
            "DescribeTraining": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                "Parameters": {"TrainingJobName.$": "$.job_name"},
                "ResultSelector": {"status.$": "$.TrainingJobStatus", "secondary.$": "$.SecondaryStatus"},
                "ResultPath": "$.training",
                "Retry": [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "MaxAttempts": 2}],
                "Next": "Trained?",
            },
            "Trained?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.training.status", "StringEquals": "Completed", "Next": "Done"},
                    {"Variable": "$.training.status", "StringEquals": "Failed", "Next": "TrainingFailed"},
                ],
                "Default": "WaitTraining",
            },
            "Done": {"Type": "Succeed"},
            "TrainingFailed": {"Type": "Fail", "Error": "TrainingFailed"},
        },
    }
    name = f"sfn-{uuid.uuid4().hex[:8]}"
    done, history = _run(local_cloud, definition, {"job_name": name}, timeout=120)
    assert done["status"] == "SUCCEEDED", json.dumps(
        [e for e in history if "Failed" in e["type"]], default=str
    )
    output = json.loads(done["output"])
    assert output["created"]["TrainingJobArn"].endswith(name)
    assert output["training"] == {"status": "Completed", "secondary": "Completed"}
    job = local_cloud.client("sagemaker").describe_training_job(TrainingJobName=name)
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{name}/output/model.tar.gz")
