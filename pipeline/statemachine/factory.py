"""The state shapes the pipeline repeats, made one way so the ASL rules hold for every state.

DESIGN.md's rules live here rather than in each phase: a Lambda task passes the whole state and
keeps only its handler's documented keys (``RESULT_KEYS``); every Task retries transient errors
with backoff and catches its handler's typed errors by name before ``States.ALL``; every poll loop
counts in the state and waits for an interval taken from the input (a back-off loop: until the time
its check function computed from the input, ``pipeline.config.polling``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from pipeline.statemachine import FUNCTION_NAMES
from pipeline.statemachine.errors import HANDLER_ERRORS, LAMBDA_TRANSIENT, SAGEMAKER_TRANSIENT
from pipeline.statemachine.outputs import RESULT_KEYS

#: Anything that can be the target of a Next, a Choice branch or a Catch.
Target = sfn.IChainable


def retry_lambda(task: sfn.TaskStateBase) -> None:
    task.add_retry(
        errors=list(LAMBDA_TRANSIENT),
        interval=Duration.seconds(2),
        max_attempts=3,
        backoff_rate=2.0,
        max_delay=Duration.seconds(30),
    )


def retry_sagemaker(task: sfn.TaskStateBase | sfn.CustomState) -> None:
    task.add_retry(
        errors=list(SAGEMAKER_TRANSIENT),
        interval=Duration.seconds(2),
        max_attempts=4,
        backoff_rate=2.0,
        max_delay=Duration.seconds(30),
    )


def catch(
    task: sfn.TaskStateBase | sfn.CustomState,
    typed: Sequence[str],
    handler: Target,
    result_path: str = "$.error",
) -> None:
    """Typed errors first (so they read as deliberate in the console), then everything else."""
    if typed:
        task.add_catch(handler, errors=list(dict.fromkeys(typed)), result_path=result_path)
    task.add_catch(handler, errors=[sfn.Errors.ALL], result_path=result_path)


class StateFactory:
    """Makes states in one scope; one instance per definition, shared by every phase.

    ``id_prefix`` goes into construct ids only (two definitions may share a scope); state names,
    and so the ASL, never carry it.
    """

    def __init__(
        self,
        scope: Construct,
        functions: Mapping[str, lambda_.IFunction],
        sagemaker_role_arn: str,
        id_prefix: str,
    ) -> None:
        missing = [name for name in FUNCTION_NAMES if name not in functions]
        if missing:
            raise ValueError(f"build_definition: functions missing for {missing}")
        self.scope = scope
        self.functions = functions
        self.sagemaker_role_arn = sagemaker_role_arn
        self.prefix = id_prefix

    def id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def partition(self) -> str:
        return Stack.of(self.scope).partition

    def invoke(
        self,
        state: str,
        function: str,
        result_path: str,
        *,
        comment: str,
        on_error: Target,
        error_path: str = "$.error",
        payload: sfn.TaskInput | None = None,
    ) -> tasks.LambdaInvoke:
        """A Lambda task; ``on_error`` receives its handler's typed errors, then ``States.ALL``.

        The payload is the whole state unless given: handlers read what they need from it, so a
        new field never needs a new Parameters mapping. The caught error lands at ``error_path``.
        """
        task = tasks.LambdaInvoke(
            self.scope,
            self.id(state),
            state_name=state,
            comment=comment,
            lambda_function=self.functions[function],
            payload=payload if payload is not None else sfn.TaskInput.from_json_path_at("$"),
            retry_on_service_exceptions=False,
            result_selector={
                key: sfn.JsonPath.string_at(f"$.Payload.{key}") for key in RESULT_KEYS[function]
            },
            result_path=result_path,
        )
        retry_lambda(task)
        catch(task, HANDLER_ERRORS[function], on_error, error_path)
        return task

    def describe_training(
        self, state: str, result_selector: dict[str, str], result_path: str, *, on_error: Target
    ) -> tasks.CallAwsService:
        """``aws-sdk:sagemaker:describeTrainingJob``: the poll half of training without ``.sync``."""
        stack = Stack.of(self.scope)
        task = tasks.CallAwsService(
            self.scope,
            self.id(state),
            state_name=state,
            service="sagemaker",
            action="describeTrainingJob",
            iam_action="sagemaker:DescribeTrainingJob",
            iam_resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
            parameters={"TrainingJobName": sfn.JsonPath.string_at("$.config.training.job_name")},
            result_selector={key: sfn.JsonPath.string_at(path) for key, path in result_selector.items()},
            result_path=result_path,
        )
        retry_sagemaker(task)
        catch(task, (), on_error)
        return task

    def count(self, state: str, loop: str, next_poll_at: str | None = None) -> sfn.Pass:
        """Increments ``$.polls.<loop>.count``: the bound of every poll loop lives in the state.

        ``next_poll_at``: where the last check put the time of the next one (a back-off loop,
        ``pipeline.config.polling``); copied to ``$.polls.<loop>.wait_until`` for the Wait.
        """
        parameters: dict[str, object] = {
            "count": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"$.polls.{loop}.count"), 1)
        }
        if next_poll_at is not None:
            parameters["wait_until"] = sfn.JsonPath.string_at(next_poll_at)
        return sfn.Pass(
            self.scope, self.id(state), state_name=state, parameters=parameters, result_path=f"$.polls.{loop}"
        )

    def wait(self, state: str, loop: str, *, until: bool = False) -> sfn.Wait:
        """Whole seconds (``SecondsPath``, the loop's ``interval_s``), or ``until`` the time the count
        copied (``TimestampPath``: sub-second back-off waits, which SecondsPath cannot express)."""
        time = (
            sfn.WaitTime.timestamp_path(f"$.polls.{loop}.wait_until")
            if until
            else sfn.WaitTime.seconds_path(f"$.config.poll.{loop}.interval_s")
        )
        return sfn.Wait(self.scope, self.id(state), state_name=state, time=time)

    def polls_exceeded(self, loop: str) -> sfn.Condition:
        return sfn.Condition.number_greater_than_equals_json_path(
            f"$.polls.{loop}.count", f"$.config.poll.{loop}.max_polls"
        )

    def error(self, state: str, error: str, cause_format: str, *paths: str) -> sfn.Pass:
        """A Pass that names a failure the state machine itself detected, in the Catch shape."""
        cause = (
            sfn.JsonPath.format(cause_format, *[sfn.JsonPath.string_at(p) for p in paths]) if paths else None
        )
        parameters = {"Error": error, "Cause": cause if cause is not None else cause_format}
        return sfn.Pass(
            self.scope, self.id(state), state_name=state, parameters=parameters, result_path="$.error"
        )

    def choice(self, state: str) -> sfn.Choice:
        """A Choice; its construct id drops the ``?`` the console name ends with."""
        return sfn.Choice(self.scope, self.id(state.rstrip("?")), state_name=state)
