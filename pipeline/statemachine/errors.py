"""Error names the state machine retries and catches.

They are the class names of the exceptions the handlers raise on purpose (Lambda reports the class
name as ``errorType``), listed here as strings so the ASL module needs no import of the handlers.
A unit test checks every name against ``lambdas.core.exceptions`` and ``pipeline.ml.exceptions``.
"""

from __future__ import annotations

#: Failures of the Lambda service itself, and our own "try again" error: worth a retry.
LAMBDA_TRANSIENT: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "TransientError",
)

#: Throttling and server-side errors of the SageMaker API tasks (aws-sdk and optimized integration).
SAGEMAKER_TRANSIENT: tuple[str, ...] = (
    "SageMaker.ThrottlingException",
    "SageMaker.InternalFailure",
    "SageMaker.ServiceUnavailable",
    "SageMaker.SageMakerException",
    "SageMaker.AmazonSageMakerException",
)

#: Typed errors each handler raises on purpose; the ASL catches them by name before ``States.ALL``.
HANDLER_ERRORS: dict[str, tuple[str, ...]] = {
    "configure": ("InvalidInput", "ConfigurationError"),
    "export_onnx": ("TrainingFailed", "ParityFailed", "InvalidDataset", "ExportFailed", "ArtifactConflict"),
    "register_model": ("ModelRejected", "RegistryError"),
    "publish_components": ("ArtifactConflict", "ComponentFailed"),
    "check_components": ("ComponentFailed",),
    "deploy": ("NoDevices", "DeploymentFailed", "ConfigurationError"),
    "check_deployment": ("DeploymentFailed", "DeploymentTimedOut", "NoDevices", "ConfigurationError"),
    "verify_on_device": ("VerificationFailed", "ConfigurationError"),
    "evaluate_stage": (),
    "promote": ("PromotionFailed",),
    "rollback": ("RollbackFailed",),
}

#: Error names the state machine itself sets (in Pass states) before it fails.
STATE_MACHINE_ERRORS: tuple[str, ...] = (
    "TrainingFailed",
    "TrainingTimedOut",
    "ModelRejected",
    "ComponentsTimedOut",
    "DeploymentTimedOut",
    "StageFailed",
)
