"""Phase ``prepare``: from the execution input to a registered model that may be deployed.

``Configure`` → ``ModelGiven?`` → (training loop → ``ExportOnnx`` → ``QualityGate``) →
``RegisterModel`` → ``ShouldDeploy?``. A given ``model_package_arn`` skips straight to
``RegisterModel``, which then resolves it; a model registered as PendingManualApproval ends the
execution at ``AwaitingApproval``. Nothing here touches a device, so every error ends in the
``on_error`` handler (``PipelineFailed``).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory, Target, catch, retry_sagemaker
from pipeline.statemachine.phases import Phase


def build(f: StateFactory, *, on_error: Target) -> Phase:
    """States are made back to front inside the phase: a Choice needs its branches' targets."""
    register_model, should_deploy = _register(f, on_error)
    export_onnx = _export_and_gate(f, on_error, register_model)
    start_training = _training(f, on_error, export_onnx)
    configure = f.invoke(
        "Configure",
        "configure",
        "$",
        comment="Validates the input against pipeline/config/input.schema.json and fills every default.",
        on_error=on_error,
        payload=sfn.TaskInput.from_object(
            {"input": sfn.JsonPath.entire_payload, "execution": sfn.JsonPath.execution_name}
        ),
    )
    configure.next(
        f.choice("ModelGiven?")
        .when(sfn.Condition.is_not_null("$.config.model_package_arn"), register_model)
        .otherwise(start_training)
    )

    def connect(deploy_path: sfn.IChainable) -> None:
        should_deploy.when(sfn.Condition.boolean_equals("$.registry.deploy", True), deploy_path)

    return Phase(entry=configure, connect=connect)


def _register(f: StateFactory, on_error: Target) -> tuple[sfn.State, sfn.Choice]:
    """``RegisterModel`` and the Choice after it, whose ``deploy`` branch is the phase's exit."""
    register_model = f.invoke(
        "RegisterModel",
        "register_model",
        "$.registry",
        comment="Creates a model package version (or resolves the one given in the input).",
        on_error=on_error,
    )
    awaiting_approval = sfn.Succeed(
        f.scope,
        f.id("AwaitingApproval"),
        state_name="AwaitingApproval",
        comment="Registered as PendingManualApproval; approving it in the registry starts the deploy path.",
    )
    should_deploy = f.choice("ShouldDeploy?").otherwise(awaiting_approval)
    register_model.next(should_deploy)
    return register_model, should_deploy


def _export_and_gate(f: StateFactory, on_error: Target, register_model: Target) -> sfn.State:
    """``ExportOnnx`` → ``QualityGate``: a model below the thresholds is never registered."""
    export_onnx = f.invoke(
        "ExportOnnx",
        "export_onnx",
        "$.model",
        comment="model.tar.gz -> ONNX; proves numeric parity on validation rows; writes golden requests.",
        on_error=on_error,
    )
    model_rejected = f.error(
        "ModelRejectedError",
        "ModelRejected",
        "Model rejected by the quality gate: {}",
        "$.model.quality.cause",
    ).next(on_error)
    export_onnx.next(
        f.choice("QualityGate")
        .when(sfn.Condition.boolean_equals("$.model.quality.passed", True), register_model)
        .otherwise(model_rejected)
    )
    return export_onnx


def _training(f: StateFactory, on_error: Target, export_onnx: Target) -> sfn.State:
    """``StartTraining`` → ``WaitTraining`` ⟲ ``DescribeTraining`` → ``TrainingDone?``.

    Request/response plus a bounded poll rather than ``.sync``, which the local interpreter lacks.
    Each way a job can end without a model gets its own error and cause.
    """
    start_training = _start_training(f, on_error)
    wait_training = f.wait("WaitTraining", "training")
    describe_training = f.describe_training(
        "DescribeTraining",
        {"status": "$.TrainingJobStatus", "secondary_status": "$.SecondaryStatus"},
        "$.training.state",
        on_error=on_error,
    )
    training_failed = f.describe_training(
        "DescribeTrainingFailure", {"reason": "$.FailureReason"}, "$.training.failure", on_error=on_error
    ).next(
        f.error(
            "TrainingFailedError",
            "TrainingFailed",
            "Training job {} failed: {}. Its logs are in CloudWatch /aws/sagemaker/TrainingJobs.",
            "$.config.training.job_name",
            "$.training.failure.reason",
        ).next(on_error)
    )
    training_stopped = f.error(
        "TrainingStoppedError",
        "TrainingFailed",
        "Training job {} was stopped before it completed.",
        "$.config.training.job_name",
    ).next(on_error)
    training_timed_out = f.error(
        "TrainingTimedOutError",
        "TrainingTimedOut",
        "Training job {} still {} after the maximum number of polls; raise poll.training.max_polls "
        "or poll.training.interval_s, or stop the job.",
        "$.config.training.job_name",
        "$.training.state.status",
    ).next(on_error)
    status = "$.training.state.status"
    start_training.next(wait_training).next(describe_training).next(
        f.choice("TrainingDone?")
        .when(sfn.Condition.string_equals(status, "Completed"), export_onnx)
        .when(sfn.Condition.string_equals(status, "Failed"), training_failed)
        .when(sfn.Condition.string_equals(status, "Stopped"), training_stopped)
        .when(f.polls_exceeded("training"), training_timed_out)
        .otherwise(f.count("CountTrainingPoll", "training").next(wait_training))
    )
    return start_training


def _start_training(f: StateFactory, on_error: Target) -> sfn.CustomState:
    """``sagemaker:createTrainingJob`` as a CustomState: script mode, every field from the config.

    The request's parts come whole from ``$.config.training`` (filled by Configure at run time),
    which CDK's typed SageMaker task does not take; ``PipelineStateMachine`` grants what it needs.
    """
    task = sfn.CustomState(
        f.scope,
        f.id("StartTraining"),
        state_json={
            "Type": "Task",
            "Comment": "SageMaker training job, script mode (request/response; polled below).",
            "Resource": f"arn:{f.partition}:states:::sagemaker:createTrainingJob",
            "Parameters": {
                "TrainingJobName.$": "$.config.training.job_name",
                "RoleArn": f.sagemaker_role_arn,
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
    retry_sagemaker(task)
    catch(task, (), on_error)
    return task
