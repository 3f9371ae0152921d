"""Step Functions refuses what AWS refuses: 256 KiB state data, StartExecution names and input.

Sources: Step Functions service quotas ("Maximum input or output size for a task, state, or
execution: 256 KiB of data as a UTF-8 encoded string"); the developer guide's error names
(States.DataLimitExceeded: output of a connector, output of a state, or input after Parameters over
the quota; "a terminal error that can't be caught by the States.ALL error type"); the StartExecution
API reference (name 1-80 characters without whitespace, brackets, wildcards, special or control
characters; input max 262144 bytes in UTF-8).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.local_cloud.test_limits_lambda import make_limits_function

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("states_role_arn")]
#: Made by the ``states_role_arn`` fixture: Step Functions may assume it and invoke functions.
ROLE = "arn:aws:iam::123456789012:role/sfn"
LIMIT = 256 * 1024  # 262,144 bytes


def _cause(name: str) -> str:
    return f"The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."


def _state_machine(local_cloud, definition: dict) -> str:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    return str(
        sfn.create_state_machine(
            name=f"limits-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
    )


def _run(
    local_cloud, definition: dict, payload: Any = None, raw_input: str | None = None
) -> tuple[dict, list[dict]]:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    sm_arn = _state_machine(local_cloud, definition)
    exec_arn = sfn.start_execution(
        stateMachineArn=sm_arn,
        name=f"x-{uuid.uuid4().hex[:8]}",
        input=raw_input if raw_input is not None else json.dumps(payload or {}),
    )["executionArn"]
    deadline = time.monotonic() + 60
    while (done := sfn.describe_execution(executionArn=exec_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution did not finish"
        time.sleep(0.2)
    history = sfn.get_execution_history(executionArn=exec_arn, maxResults=1000)["events"]
    return done, history


def _types(history: list[dict]) -> list[str]:
    return [e["type"] for e in history]


def _pass_with_output_of(size: int, char: str = "a") -> dict:
    """A Pass state whose output, as compact UTF-8 JSON, is exactly ``size`` bytes."""
    room = size - len(b'{"Arg1":""}')
    width = len(char.encode())
    assert room % width == 0
    return {"Type": "Pass", "Result": {"Arg1": char * (room // width)}, "End": True}


# -- state output --------------------------------------------------------------------------------


def test_pass_output_over_256kib_fails_the_execution(local_cloud) -> None:  # type: ignore[no-untyped-def]
    done, history = _run(
        local_cloud, {"StartAt": "State_1", "States": {"State_1": _pass_with_output_of(LIMIT + 1)}}
    )
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"
    assert done["cause"] == _cause("State_1")
    # as in AWS's history: the state never exits, the execution fails
    assert _types(history) == ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]


def test_pass_output_of_exactly_256kib_is_accepted(local_cloud) -> None:  # type: ignore[no-untyped-def]
    done, _ = _run(local_cloud, {"StartAt": "Exact", "States": {"Exact": _pass_with_output_of(LIMIT)}})
    assert done["status"] == "SUCCEEDED"
    output = json.dumps(json.loads(done["output"]), separators=(",", ":"))  # moto adds spaces
    assert len(output.encode()) == LIMIT


def test_size_is_counted_in_utf8_bytes(local_cloud) -> None:  # type: ignore[no-untyped-def]
    state = _pass_with_output_of(LIMIT + 1, char="\u00e9")  # 131,067 characters, 262,145 bytes
    done, _ = _run(local_cloud, {"StartAt": "Accents", "States": {"Accents": state}})
    assert len(state["Result"]["Arg1"]) < LIMIT
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"


def test_map_output_over_256kib_names_the_map_state(local_cloud) -> None:  # type: ignore[no-untyped-def]
    # each device's detail fits, the collected array does not
    definition = {
        "StartAt": "VerifyDevices",
        "States": {
            "VerifyDevices": {
                "Type": "Map",
                "ItemsPath": "$.devices",
                "Iterator": {
                    "StartAt": "Detail",
                    "States": {"Detail": {"Type": "Pass", "Result": {"log": "l" * 100_000}, "End": True}},
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    done, history = _run(local_cloud, definition, {"devices": ["a", "b", "c"]})
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"
    assert done["cause"] == _cause("VerifyDevices")
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert "Handled" not in entered  # States.ALL on the Map does not catch it


# -- task results and the effective output -------------------------------------------------------


def _lambda_task(fn: str, result_bytes: int, **extra: Any) -> dict:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": fn, "Payload": {"bytes": result_bytes}},
        **extra,
    }


def test_task_result_over_256kib_is_not_caught_or_retried_by_states_all(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    fn = make_limits_function(local_cloud, lambda_role_arn, "sized")
    definition = {
        "StartAt": "InvokeLambda",
        "States": {
            "InvokeLambda": _lambda_task(
                fn,
                300_000,
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                Catch=[{"ErrorEquals": ["States.ALL"], "Next": "HandleGeneralError"}],
                End=True,
            ),
            "HandleGeneralError": {"Type": "Pass", "End": True},
        },
    }
    done, history = _run(local_cloud, definition)
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"
    assert done["cause"] == _cause("lambda")  # a connector's result: AWS names the resource type
    types = _types(history)
    assert types.count("TaskScheduled") == 1  # not retried
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["InvokeLambda"]  # not caught
    failed = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
    assert failed["error"] == "States.DataLimitExceeded"


def test_explicit_data_limit_catcher_still_matches(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    fn = make_limits_function(local_cloud, lambda_role_arn, "sized")
    definition = {
        "StartAt": "InvokeLambda",
        "States": {
            "InvokeLambda": {
                "Type": "Task",
                "Resource": fn,  # the bare function ARN: the cause names the function
                "Parameters": {"bytes": 300_000},
                "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "HandleDataLimitExceeded"}],
                "End": True,
            },
            "HandleDataLimitExceeded": {"Type": "Pass", "End": True},
        },
    }
    done, _ = _run(local_cloud, definition)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"Error": "States.DataLimitExceeded", "Cause": _cause(fn)}


def test_output_over_256kib_after_result_path_names_the_state(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    fn = make_limits_function(local_cloud, lambda_role_arn, "sized")
    definition = {
        "StartAt": "Merge",
        "States": {
            "Merge": {
                "Type": "Task",
                "Resource": fn,
                "Parameters": {"bytes": 200_000},  # the result alone fits
                "ResultPath": "$.result",  # merged into a 100 kB input it does not
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    done, history = _run(local_cloud, definition, {"pad": "p" * 100_000})
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"
    assert done["cause"] == _cause("Merge")
    assert "LambdaFunctionSucceeded" in _types(history)
    assert "TaskStateExited" not in _types(history)


def test_input_over_256kib_after_parameters_fails_before_the_task(local_cloud, lambda_role_arn) -> None:  # type: ignore[no-untyped-def]
    fn = make_limits_function(local_cloud, lambda_role_arn, "received")
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                # each copy of the state fits; the two together do not
                "Parameters": {"FunctionName": fn, "Payload": {"a.$": "$.doc", "b.$": "$.doc"}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    done, history = _run(local_cloud, definition, {"doc": "d" * 150_000})
    assert done["status"] == "FAILED"
    assert done["error"] == "States.DataLimitExceeded"
    assert "TaskScheduled" not in _types(history)  # the function was never called


# -- StartExecution ------------------------------------------------------------------------------


def _compact_input_of(size: int) -> str:
    """A compact JSON object of exactly ``size`` UTF-8 bytes, with 2-byte characters in it."""
    text = '{"a":"' + "\u00e9" * 1000 + '"}'
    return text[:-2] + "x" * (size - len(text.encode())) + '"}'


def test_start_execution_input_boundary(local_cloud) -> None:  # type: ignore[no-untyped-def]
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    exact = _compact_input_of(LIMIT)
    assert len(exact.encode()) == LIMIT
    done, _ = _run(local_cloud, definition, raw_input=exact)
    assert done["status"] == "SUCCEEDED"

    sfn = local_cloud.client("stepfunctions")
    sm_arn = _state_machine(local_cloud, definition)
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=sm_arn, name="too-big", input=_compact_input_of(LIMIT + 1))
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        "1 validation error detected: Value at 'input' failed to satisfy constraint: "
        "Member must have size less than or equal to 262144 bytes in UTF-8 encoding"
    )


@pytest.mark.parametrize(
    "name", ["with space", "tab\there", "new\nline", "a/b", "a:b", "[x]", "a*", "q?", "$x", "c\u0085"]
)
def test_start_execution_refuses_invalid_names(local_cloud, name: str) -> None:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    sm_arn = _state_machine(local_cloud, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=sm_arn, name=name, input="{}")
    assert refused.value.response["Error"]["Code"] == "InvalidName"
    assert refused.value.response["Error"]["Message"] == f"Invalid Name: '{name}'"


def test_start_execution_name_length_and_reuse(local_cloud) -> None:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    sm_arn = _state_machine(local_cloud, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=sm_arn, name="n" * 81, input="{}")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == (
        f"1 validation error detected: Value '{'n' * 81}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 80"
    )
    name = "n" * 72 + uuid.uuid4().hex[:8]  # exactly 80
    arn = sfn.start_execution(stateMachineArn=sm_arn, name=name, input="{}")["executionArn"]
    assert arn.endswith(f":{name}")
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.1)
    # names are unique per state machine: a closed execution's name is refused (moto enforces it)
    with pytest.raises(ClientError) as reused:
        sfn.start_execution(stateMachineArn=sm_arn, name=name, input="{}")
    assert reused.value.response["Error"]["Code"] == "ExecutionAlreadyExists"


def test_start_execution_refuses_input_that_is_not_json(local_cloud) -> None:  # type: ignore[no-untyped-def]
    sfn = local_cloud.client("stepfunctions")
    sm_arn = _state_machine(local_cloud, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=sm_arn, name="not-json", input="{")
    assert refused.value.response["Error"]["Code"] == "InvalidExecutionInput"
    assert refused.value.response["Error"]["Message"].startswith("Invalid State Machine Execution Input: '")
