"""``PipelineStateMachine``: the state machine resource around :func:`build_definition`.

The infra stack owns the Lambdas, roles and log group; this construct wires them into a state
machine with logging (ALL, with execution data) and X-Ray tracing, and grants what the CustomState
for ``sagemaker:createTrainingJob`` needs (CDK only derives permissions for its own task classes).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.statemachine.definition import build_definition


class PipelineStateMachine(Construct):
    """The pipeline state machine; ``state_machine`` and ``start_state`` are exposed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        sagemaker_role: iam.IRole,
        log_group: logs.ILogGroup,
        state_machine_name: str | None = None,
        timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.start_state: sfn.State = build_definition(
            self, functions=functions, sagemaker_role_arn=sagemaker_role.role_arn
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(self.start_state),
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            timeout=timeout or Duration.hours(6),
        )
        stack = Stack.of(self)
        training_jobs = stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="StartTrainingJobs",
                actions=["sagemaker:CreateTrainingJob", "sagemaker:AddTags"],
                resources=[training_jobs],
            )
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                sid="PassSageMakerRole",
                actions=["iam:PassRole"],
                resources=[sagemaker_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
