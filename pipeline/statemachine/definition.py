"""The pipeline's state machine, built from CDK Step Functions constructs.

One definition serves both infrastructures: CDK synthesizes it for AWS, and :func:`plain_asl`
(``pipeline.statemachine.asl``) turns the same constructs into plain ASL for the local cloud. The
rules of DESIGN.md shape it: SageMaker training is request/response plus a bounded poll loop (no
``.sync``); greengrassv2/iot calls live in Lambdas; every Task retries transient errors with
backoff and catches the handlers' typed errors before ``States.ALL``; every loop is bounded by a
counter kept in the state; result selectors keep only what later states read (no datetimes).

State document (``$``) as the execution runs::

    config       normalized execution input (Configure)
    polls        {"training": {"count"}, "components": {"count"}, "deployment": {"count"}}
    training     {"arn", "state": {"status", "secondary_status"}, "failure"?}
    model        exported ONNX artifact (ExportOnnx)
    registry     model package + the model artifact it points to (RegisterModel)
    components   component names/versions, reused flags, deployable (PublishComponents/Check)
    deployment   deployment id, thing group, devices (Deploy)
    deployment_status  per-device status (CheckDeployment)
    verification per-device verification results (VerifyOnDevice)
    promotion    last known good record (Promote)
    error        {"Error", "Cause"} from a Catch or a Pass that names the failure
    rollback     {"error", "cause", ...} (Rollback)
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


def _retry_lambda(task: sfn.TaskStateBase) -> None:
    task.add_retry(
        errors=list(LAMBDA_TRANSIENT),
        interval=Duration.seconds(2),
        max_attempts=3,
        backoff_rate=2.0,
        max_delay=Duration.seconds(30),
    )


def _retry_sagemaker(task: sfn.TaskStateBase | sfn.CustomState) -> None:
    task.add_retry(
        errors=list(SAGEMAKER_TRANSIENT),
        interval=Duration.seconds(2),
        max_attempts=4,
        backoff_rate=2.0,
        max_delay=Duration.seconds(30),
    )


def _catch(task: sfn.TaskStateBase | sfn.CustomState, typed: Sequence[str], handler: sfn.IChainable) -> None:
    """Typed errors first (so they read as deliberate in the console), then everything else."""
    if typed:
        task.add_catch(handler, errors=list(dict.fromkeys(typed)), result_path="$.error")
    task.add_catch(handler, errors=[sfn.Errors.ALL], result_path="$.error")


class _Builder:
    """Builds the states into ``scope``; one instance per definition."""

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
        self.p = id_prefix

    def _id(self, name: str) -> str:
        return f"{self.p}{name}"

    def invoke(self, state: str, function: str, result_path: str, *, comment: str) -> tasks.LambdaInvoke:
        """A Lambda task that passes the whole state and keeps only the handler's documented keys."""
        task = tasks.LambdaInvoke(
            self.scope,
            self._id(state),
            state_name=state,
            comment=comment,
            lambda_function=self.functions[function],
            payload=sfn.TaskInput.from_json_path_at("$"),
            retry_on_service_exceptions=False,
            result_selector={
                key: sfn.JsonPath.string_at(f"$.Payload.{key}") for key in RESULT_KEYS[function]
            },
            result_path=result_path,
        )
        _retry_lambda(task)
        return task

    def describe_training(
        self, state: str, result_selector: dict[str, str], result_path: str
    ) -> tasks.CallAwsService:
        stack = Stack.of(self.scope)
        task = tasks.CallAwsService(
            self.scope,
            self._id(state),
            state_name=state,
            service="sagemaker",
            action="describeTrainingJob",
            iam_action="sagemaker:DescribeTrainingJob",
            iam_resources=[stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")],
            parameters={"TrainingJobName": sfn.JsonPath.string_at("$.config.training.job_name")},
            result_selector={key: sfn.JsonPath.string_at(path) for key, path in result_selector.items()},
            result_path=result_path,
        )
        _retry_sagemaker(task)
        return task

    def count(self, state: str, loop: str) -> sfn.Pass:
        """Increments ``$.polls.<loop>.count``: the bound of every poll loop lives in the state."""
        return sfn.Pass(
            self.scope,
            self._id(state),
            state_name=state,
            parameters={"count": sfn.JsonPath.math_add(sfn.JsonPath.number_at(f"$.polls.{loop}.count"), 1)},
            result_path=f"$.polls.{loop}",
        )

    def wait(self, state: str, loop: str) -> sfn.Wait:
        return sfn.Wait(
            self.scope,
            self._id(state),
            state_name=state,
            time=sfn.WaitTime.seconds_path(f"$.config.poll.{loop}.interval_s"),
        )

    def error(self, state: str, error: str, cause_format: str, *paths: str) -> sfn.Pass:
        """A Pass that names a failure the state machine itself detected, in the Catch shape."""
        cause = (
            sfn.JsonPath.format(cause_format, *[sfn.JsonPath.string_at(p) for p in paths]) if paths else None
        )
        parameters = {"Error": error, "Cause": cause if cause is not None else cause_format}
        return sfn.Pass(
            self.scope, self._id(state), state_name=state, parameters=parameters, result_path="$.error"
        )

    def polls_exceeded(self, loop: str) -> sfn.Condition:
        return sfn.Condition.number_greater_than_equals_json_path(
            f"$.polls.{loop}.count", f"$.config.poll.{loop}.max_polls"
        )

    def build(self) -> sfn.State:
        s = self.scope
        # --- terminal states -------------------------------------------------------------------
        pipeline_failed = sfn.Fail(
            s,
            self._id("PipelineFailed"),
            state_name="PipelineFailed",
            comment="Failed before anything was deployed; the devices were not touched.",
            error_path="$.error.Error",
            cause_path="$.error.Cause",
        )
        rolled_back = sfn.Fail(
            s,
            self._id("RolledBack"),
            state_name="RolledBack",
            comment="Deployment or verification failed; the thing group was given its last known good set.",
            error_path="$.rollback.error",
            cause_path="$.rollback.cause",
        )
        rollback_failed = sfn.Fail(
            s,
            self._id("RollbackFailed"),
            state_name="RollbackFailed",
            comment="The rollback itself failed: devices may run the failed versions. Act now.",
            error="RollbackFailed",
            cause_path=sfn.JsonPath.format(
                "Rollback failed ({}) after: {}",
                sfn.JsonPath.string_at("$.rollback_error.Cause"),
                sfn.JsonPath.string_at("$.error.Cause"),
            ),
        )
        succeeded = sfn.Succeed(s, self._id("PipelineSucceeded"), state_name="PipelineSucceeded")
        awaiting_approval = sfn.Succeed(
            s,
            self._id("AwaitingApproval"),
            state_name="AwaitingApproval",
            comment="Registered as PendingManualApproval; approving it in the registry starts the deploy path.",
        )

        # --- rollback (any failure after Deploy) -----------------------------------------------
        rollback = self.invoke(
            "Rollback",
            "rollback",
            "$.rollback",
            comment="Redeploys the last known good component versions (or removes the failed ones).",
        )
        rollback.add_catch(
            rollback_failed, errors=list(HANDLER_ERRORS["rollback"]), result_path="$.rollback_error"
        )
        rollback.add_catch(rollback_failed, errors=[sfn.Errors.ALL], result_path="$.rollback_error")
        rollback.next(rolled_back)

        def before_deploy(task: sfn.TaskStateBase | sfn.CustomState, function: str | None) -> None:
            _catch(task, HANDLER_ERRORS.get(function, ()) if function else (), pipeline_failed)

        def after_deploy(task: sfn.TaskStateBase, function: str) -> None:
            _catch(task, HANDLER_ERRORS[function], rollback)

        # --- configure -------------------------------------------------------------------------
        configure = tasks.LambdaInvoke(
            s,
            self._id("Configure"),
            state_name="Configure",
            comment="Validates the input against pipeline/config/input.schema.json and fills every default.",
            lambda_function=self.functions["configure"],
            payload=sfn.TaskInput.from_object(
                {"input": sfn.JsonPath.entire_payload, "execution": sfn.JsonPath.execution_name}
            ),
            retry_on_service_exceptions=False,
            result_selector={
                "config": sfn.JsonPath.string_at("$.Payload.config"),
                "polls": sfn.JsonPath.string_at("$.Payload.polls"),
            },
            result_path="$",
        )
        _retry_lambda(configure)
        before_deploy(configure, "configure")

        # --- training --------------------------------------------------------------------------
        start_training = sfn.CustomState(
            s,
            self._id("StartTraining"),
            state_json={
                "Type": "Task",
                "Comment": "SageMaker training job, script mode (request/response; polled below).",
                "Resource": f"arn:{Stack.of(s).partition}:states:::sagemaker:createTrainingJob",
                "Parameters": {
                    "TrainingJobName.$": "$.config.training.job_name",
                    "RoleArn": self.sagemaker_role_arn,
                    "AlgorithmSpecification.$": "$.config.training.algorithm_specification",
                    "HyperParameters.$": "$.config.training.hyperparameters",
                    "InputDataConfig.$": "$.config.training.input_data_config",
                    "OutputDataConfig.$": "$.config.training.output_data_config",
                    "ResourceConfig.$": "$.config.training.resource_config",
                    "StoppingCondition.$": "$.config.training.stopping_condition",
                },
                "ResultSelector": {"arn.$": "$.TrainingJobArn"},
                "ResultPath": "$.training",
            },
        )
        _retry_sagemaker(start_training)
        before_deploy(start_training, None)

        wait_training = self.wait("WaitTraining", "training")
        describe_training = self.describe_training(
            "DescribeTraining",
            {"status": "$.TrainingJobStatus", "secondary_status": "$.SecondaryStatus"},
            "$.training.state",
        )
        before_deploy(describe_training, None)
        count_training = self.count("CountTrainingPoll", "training")
        describe_failure = self.describe_training(
            "DescribeTrainingFailure", {"reason": "$.FailureReason"}, "$.training.failure"
        )
        before_deploy(describe_failure, None)
        training_failed = self.error(
            "TrainingFailedError",
            "TrainingFailed",
            "Training job {} failed: {}. Its logs are in CloudWatch /aws/sagemaker/TrainingJobs.",
            "$.config.training.job_name",
            "$.training.failure.reason",
        )
        training_stopped = self.error(
            "TrainingStoppedError",
            "TrainingFailed",
            "Training job {} was stopped before it completed.",
            "$.config.training.job_name",
        )
        training_timed_out = self.error(
            "TrainingTimedOutError",
            "TrainingTimedOut",
            "Training job {} still {} after the maximum number of polls; raise poll.training.max_polls "
            "or poll.training.interval_s, or stop the job.",
            "$.config.training.job_name",
            "$.training.state.status",
        )

        # --- export, gate, register ------------------------------------------------------------
        export_onnx = self.invoke(
            "ExportOnnx",
            "export_onnx",
            "$.model",
            comment="model.tar.gz -> ONNX; proves numeric parity on validation rows; writes golden requests.",
        )
        before_deploy(export_onnx, "export_onnx")
        model_rejected = self.error(
            "ModelRejectedError",
            "ModelRejected",
            "Model rejected by the quality gate: {}",
            "$.model.quality.cause",
        )
        register_model = self.invoke(
            "RegisterModel",
            "register_model",
            "$.registry",
            comment="Creates a model package version (or resolves the one given in the input).",
        )
        before_deploy(register_model, "register_model")

        # --- package ---------------------------------------------------------------------------
        publish = self.invoke(
            "PublishComponents",
            "publish_components",
            "$.components",
            comment="Model and inference components; existing identical versions are reused.",
        )
        before_deploy(publish, "publish_components")
        wait_components = self.wait("WaitComponents", "components")
        check_components = self.invoke(
            "CheckComponents", "check_components", "$.components", comment="DEPLOYABLE yet?"
        )
        before_deploy(check_components, "check_components")
        count_components = self.count("CountComponentsPoll", "components")
        components_timed_out = self.error(
            "ComponentsTimedOutError",
            "ComponentsTimedOut",
            "Component versions {} {} / {} {} not DEPLOYABLE after the maximum number of polls.",
            "$.components.model.name",
            "$.components.model.version",
            "$.components.inference.name",
            "$.components.inference.version",
        )

        # --- deploy ----------------------------------------------------------------------------
        deploy = self.invoke(
            "Deploy",
            "deploy",
            "$.deployment",
            comment="Greengrass deployment to the thing group, ROLLBACK policy.",
        )
        after_deploy(deploy, "deploy")
        wait_deployment = self.wait("WaitDeployment", "deployment")
        check_deployment = self.invoke(
            "CheckDeployment",
            "check_deployment",
            "$.deployment_status",
            comment="Each device's own result for this deployment (ListEffectiveDeployments).",
        )
        after_deploy(check_deployment, "check_deployment")
        count_deployment = self.count("CountDeploymentPoll", "deployment")
        deployment_timed_out = self.error(
            "DeploymentTimedOutError",
            "DeploymentTimedOut",
            "Deployment {} not finished on every device after the maximum number of polls: {}",
            "$.deployment.deployment_id",
            "$.deployment_status.summary",
        ).next(rollback)

        # --- verify, promote -------------------------------------------------------------------
        verify = self.invoke(
            "VerifyOnDevice",
            "verify_on_device",
            "$.verification",
            comment="Golden requests over MQTT to every device; answers and model version compared.",
        )
        after_deploy(verify, "verify_on_device")
        promote = self.invoke(
            "Promote",
            "promote",
            "$.promotion",
            comment="Records last known good; approves the model package.",
        )
        after_deploy(promote, "promote")

        # --- wiring ----------------------------------------------------------------------------
        training_failed.next(pipeline_failed)
        training_stopped.next(pipeline_failed)
        training_timed_out.next(pipeline_failed)
        model_rejected.next(pipeline_failed)
        components_timed_out.next(pipeline_failed)
        describe_failure.next(training_failed)

        deploy_chain = (
            deploy.next(wait_deployment)
            .next(check_deployment)
            .next(
                sfn.Choice(s, self._id("DeploymentDone"), state_name="DeploymentDone?")
                .when(sfn.Condition.string_equals("$.deployment_status.status", "SUCCEEDED"), verify)
                .when(self.polls_exceeded("deployment"), deployment_timed_out)
                .otherwise(count_deployment.next(wait_deployment))
            )
        )
        verify.next(promote).next(succeeded)

        components_ready = (
            sfn.Choice(s, self._id("ComponentsDeployable"), state_name="ComponentsDeployable?")
            .when(sfn.Condition.boolean_equals("$.components.deployable", True), deploy_chain)
            .when(self.polls_exceeded("components"), components_timed_out)
            .otherwise(count_components.next(wait_components))
        )
        wait_components.next(check_components).next(components_ready)
        publish.next(components_ready)

        register_model.next(
            sfn.Choice(s, self._id("ShouldDeploy"), state_name="ShouldDeploy?")
            .when(sfn.Condition.boolean_equals("$.registry.deploy", True), publish)
            .otherwise(awaiting_approval)
        )
        export_onnx.next(
            sfn.Choice(s, self._id("QualityGate"), state_name="QualityGate")
            .when(sfn.Condition.boolean_equals("$.model.quality.passed", True), register_model)
            .otherwise(model_rejected)
        )
        start_training.next(wait_training).next(describe_training).next(
            sfn.Choice(s, self._id("TrainingDone"), state_name="TrainingDone?")
            .when(sfn.Condition.string_equals("$.training.state.status", "Completed"), export_onnx)
            .when(sfn.Condition.string_equals("$.training.state.status", "Failed"), describe_failure)
            .when(sfn.Condition.string_equals("$.training.state.status", "Stopped"), training_stopped)
            .when(self.polls_exceeded("training"), training_timed_out)
            .otherwise(count_training.next(wait_training))
        )
        configure.next(
            sfn.Choice(s, self._id("ModelGiven"), state_name="ModelGiven?")
            .when(sfn.Condition.is_not_null("$.config.model_package_arn"), register_model)
            .otherwise(start_training)
        )
        return configure


def build_definition(
    scope: Construct,
    *,
    functions: Mapping[str, lambda_.IFunction],
    sagemaker_role_arn: str,
    id_prefix: str = "",
) -> sfn.State:
    """Builds every state into ``scope`` and returns the start state (``Configure``).

    ``functions`` maps each of :data:`FUNCTION_NAMES` to a Lambda; ``sagemaker_role_arn`` is the
    execution role the training job runs with. ``id_prefix`` keeps construct ids unique when two
    definitions share a scope. Keep the returned state: ``DefinitionBody.from_chainable(start)``
    for a ``StateMachine``, ``State.find_reachable_states(start, include_error_handlers=True)``
    for the plain ASL (see :func:`pipeline.statemachine.asl.plain_asl`).
    """
    return _Builder(scope, functions, sagemaker_role_arn, id_prefix).build()
