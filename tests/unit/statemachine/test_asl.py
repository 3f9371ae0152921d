"""The ASL from the constructs: every Task retries and catches, loops are bounded, failures explain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pipeline.config.polling import BACKOFF_LOOPS
from pipeline.statemachine import FUNCTION_NAMES, HANDLER_ERRORS

from .conftest import ROLE, function_arns

EXPECTED_STATES = {
    "Configure", "ModelGiven?", "StartTraining", "WaitTraining", "DescribeTraining", "TrainingDone?",
    "CountTrainingPoll", "DescribeTrainingFailure", "TrainingFailedError", "TrainingStoppedError",
    "TrainingTimedOutError", "ExportOnnx", "QualityGate", "ModelRejectedError", "RegisterModel",
    "ShouldDeploy?", "AwaitingApproval", "PublishComponents", "ComponentsDeployable?", "WaitComponents",
    "CheckComponents", "CountComponentsPoll", "ComponentsTimedOutError", "Deploy", "WaitDeployment",
    "CheckDeployment", "DeploymentDone?", "CountDeploymentPoll", "DeploymentTimedOutError", "VerifyOnDevice",
    "Promote", "PipelineSucceeded", "Rollback", "RolledBack", "RollbackFailed", "PipelineFailed",
    "VerifyStage?", "EvaluateStage", "StageDone?", "StageFailedError", "Bake", "NextStage", "RolloutStopped",
}  # fmt: skip


def tasks(asl: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    return ((n, s) for n, s in asl["States"].items() if s["Type"] == "Task")


def successors(state: dict[str, Any]) -> set[str]:
    out = {state[k] for k in ("Next", "Default") if k in state}
    out |= {c["Next"] for c in state.get("Choices", [])}
    out |= {c["Next"] for c in state.get("Catch", [])}
    return out


def test_state_list(asl: dict[str, Any]) -> None:
    assert set(asl["States"]) == EXPECTED_STATES
    assert asl["StartAt"] == "Configure"


def test_document_is_plain_json_without_tokens(asl: dict[str, Any]) -> None:
    text = json.dumps(asl)
    assert "${Token" not in text and "Fn::" not in text and '"Ref"' not in text
    assert ROLE in text


def test_every_function_is_invoked_by_its_arn(asl: dict[str, Any]) -> None:
    invoked = {
        s["Parameters"]["FunctionName"] for _, s in tasks(asl) if s["Resource"].endswith(":lambda:invoke")
    }
    assert invoked == set(function_arns().values())


def test_every_task_retries_transient_errors_with_backoff_and_catches(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl):
        retry = state.get("Retry") or []
        assert retry and all(r["BackoffRate"] >= 2 and r["MaxAttempts"] >= 2 for r in retry), name
        assert "States.ALL" not in {e for r in retry for e in r["ErrorEquals"]}, name
        catch = state.get("Catch") or []
        assert catch and catch[-1]["ErrorEquals"] == ["States.ALL"], name
        assert all("States.ALL" not in c["ErrorEquals"] for c in catch[:-1]), name


def test_typed_handler_errors_are_caught_by_name(asl: dict[str, Any]) -> None:
    by_arn = {arn: name for name, arn in function_arns().items()}
    for state_name, state in tasks(asl):
        if not state["Resource"].endswith(":lambda:invoke"):
            continue
        function = by_arn[state["Parameters"]["FunctionName"]]
        caught = {e for c in state["Catch"][:-1] for e in c["ErrorEquals"]}
        assert set(HANDLER_ERRORS[function]) <= caught, state_name
        assert "TransientError" in state["Retry"][0]["ErrorEquals"]


def test_failures_after_deploy_roll_back_and_before_do_not(asl: dict[str, Any]) -> None:
    states = asl["States"]
    for name in ("Deploy", "CheckDeployment", "VerifyOnDevice", "EvaluateStage", "Promote"):
        assert {c["Next"] for c in states[name]["Catch"]} == {"Rollback"}, name
    for name in (
        "Configure",
        "StartTraining",
        "DescribeTraining",
        "ExportOnnx",
        "RegisterModel",
        "PublishComponents",
        "CheckComponents",
    ):
        assert {c["Next"] for c in states[name]["Catch"]} == {"PipelineFailed"}, name
    assert states["DeploymentTimedOutError"]["Next"] == "Rollback"
    assert states["StageFailedError"]["Next"] == "Rollback"
    assert states["Rollback"]["Next"] == "RolloutStopped"
    assert states["RolloutStopped"] == {
        "Type": "Pass",
        "InputPath": "$.rollback.rollout",
        "ResultPath": "$.rollout",
        "Next": "RolledBack",
    }
    assert states["Rollback"]["Catch"][-1]["Next"] == "RollbackFailed"


def test_every_fail_state_carries_a_cause(asl: dict[str, Any]) -> None:
    fails = {n: s for n, s in asl["States"].items() if s["Type"] == "Fail"}
    assert set(fails) == {"PipelineFailed", "RolledBack", "RollbackFailed"}
    for name, state in fails.items():
        assert ("Cause" in state or "CausePath" in state) and ("Error" in state or "ErrorPath" in state), name


def test_every_state_is_reachable_and_every_path_ends(asl: dict[str, Any]) -> None:
    states = asl["States"]
    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(successors(states[name]))
    assert seen == set(states)
    for name, state in states.items():
        assert state["Type"] in ("Succeed", "Fail") or successors(state) or state.get("End"), name


def _cycles(asl: dict[str, Any]) -> list[list[str]]:
    """Elementary cycles through the Next/Choice graph (Catch edges go forward only)."""
    states = asl["States"]
    graph = {
        n: {s[k] for k in ("Next", "Default") if k in s} | {c["Next"] for c in s.get("Choices", [])}
        for n, s in states.items()
    }
    cycles: list[list[str]] = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt == start:
                cycles.append(path)
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return cycles


def test_every_loop_is_bounded_by_a_counter_and_waits_from_input(asl: dict[str, Any]) -> None:
    states = asl["States"]
    cycles = _cycles(asl)
    polls = [c for c in cycles if "Bake" not in c]
    stages = [c for c in cycles if "Bake" in c]
    assert len(polls) == 3 and len(stages) == 2  # the stage loop, with and without VerifyOnDevice
    for cycle in polls:
        kinds = {states[n]["Type"] for n in cycle}
        assert {"Wait", "Choice", "Pass"} <= kinds, cycle
        wait = next(states[n] for n in cycle if states[n]["Type"] == "Wait")
        counter = next(states[n] for n in cycle if states[n]["Type"] == "Pass")
        loop = counter["ResultPath"].removeprefix("$.polls.")
        count = {"count.$": f"States.MathAdd($.polls.{loop}.count, 1)"}
        if loop in BACKOFF_LOOPS:
            # the check function in the loop says when the next check is due; the count copies it
            # and the Wait waits until then (sub-second back-off: SecondsPath takes whole seconds)
            check = next(n for n in cycle if states[n]["Type"] == "Task")
            result = states[check]["ResultPath"]
            assert "next_poll_at.$" in states[check]["ResultSelector"], check
            assert counter["Parameters"] == {**count, "wait_until.$": f"{result}.next_poll_at"}
            assert wait == {"Type": "Wait", "TimestampPath": f"$.polls.{loop}.wait_until", "Next": check}
        else:
            assert wait["SecondsPath"] == f"$.config.poll.{loop}.interval_s", cycle
            assert counter["Parameters"] == count
        choice = next(states[n] for n in cycle if states[n]["Type"] == "Choice")
        bound = [
            c
            for c in choice["Choices"]
            if c.get("NumericGreaterThanEqualsPath") == f"$.config.poll.{loop}.max_polls"
        ]
        assert bound and bound[0]["Variable"] == f"$.polls.{loop}.count" and bound[0]["Next"] not in cycle
    for cycle in stages:
        # EvaluateStage advances $.rollout.index; StageDone? loops only while it is below the count.
        assert "EvaluateStage" in cycle and "StageDone?" in cycle, cycle
        assert states["EvaluateStage"]["ResultPath"] == "$.rollout"
        (loop_on,) = [c for c in states["StageDone?"]["Choices"] if c["Next"] == "Bake"]
        assert loop_on == {
            "Variable": "$.rollout.index",
            "NumericLessThanPath": "$.rollout.count",
            "Next": "Bake",
        }
        assert states["Bake"]["SecondsPath"] == "$.rollout.bake_s"
        # each stage's deployment loop counts its polls from zero
        assert states["NextStage"]["Parameters"] == {"count": 0}
        assert states["NextStage"]["ResultPath"] == "$.polls.deployment"


def test_portability_rules(asl: dict[str, Any]) -> None:
    resources = {s["Resource"] for _, s in tasks(asl)}
    assert not any(r.endswith(".sync") for r in resources)
    assert not any(":aws-sdk:greengrass" in r or ":aws-sdk:iot" in r or ":aws-sdk:s3" in r for r in resources)
    assert "arn:aws:states:::sagemaker:createTrainingJob" in resources
    assert "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob" in resources
    for name, state in tasks(asl):
        assert "ResultSelector" in state and "ResultPath" in state, name
    describe = asl["States"]["DescribeTraining"]["ResultSelector"]
    assert set(describe) == {"status.$", "secondary_status.$"}  # no timestamps kept


def test_start_training_is_script_mode_from_config(asl: dict[str, Any]) -> None:
    params = asl["States"]["StartTraining"]["Parameters"]
    assert params["RoleArn"] == ROLE
    assert params["HyperParameters.$"] == "$.config.training.hyperparameters"
    assert params["TrainingJobName.$"] == "$.config.training.job_name"


def test_every_function_name_has_a_state(asl: dict[str, Any]) -> None:
    text = json.dumps(asl)
    for name in FUNCTION_NAMES:
        assert f'function:mlops-edge-{name}"' in text, name


def test_readme_diagram_is_current(asl: dict[str, Any]) -> None:
    from pathlib import Path

    from pipeline.statemachine.diagram import mermaid

    readme = (Path(__file__).resolve().parents[3] / "pipeline" / "statemachine" / "README.md").read_text()
    block = readme.split("<!-- diagram:start -->")[1].split("<!-- diagram:end -->")[0]
    assert block.strip() == f"```mermaid\n{mermaid(asl)}```", "run: python -m pipeline.statemachine.diagram"


def test_errors_the_state_machine_names_itself_are_documented(asl: dict[str, Any]) -> None:
    from pipeline.statemachine.errors import STATE_MACHINE_ERRORS

    named = {
        s["Parameters"]["Error"]
        for s in asl["States"].values()
        if s["Type"] == "Pass" and "Error" in s.get("Parameters", {})
    }
    assert named == set(STATE_MACHINE_ERRORS)
    for name, state in asl["States"].items():
        if name.endswith("Error"):
            assert state["ResultPath"] == "$.error", name
            assert {"Cause.$", "Cause"} & set(state["Parameters"]), name
