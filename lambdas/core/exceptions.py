"""Typed errors of the Lambda cores.

The class name is what Lambda reports as ``errorType`` and what the state machine's Retry/Catch
match (``pipeline/statemachine/errors.py``), so names are part of the interface: rename only
together with the ASL. Messages are read by people in the Fail state's cause: say what failed and
what to do. ``ParityFailed``, ``InvalidDataset``, ``ExportFailed`` and ``TrainingFailed`` come from
``pipeline.ml`` and ``InvalidInput`` from ``pipeline.config.errors``: they propagate unchanged.
"""

from __future__ import annotations

from pipeline.config.errors import InvalidInput
from pipeline.ml.exceptions import TrainingFailed

__all__ = [
    "ArtifactConflict",
    "ComponentFailed",
    "ConfigurationError",
    "DeploymentFailed",
    "DeploymentTimedOut",
    "InvalidInput",
    "ModelRejected",
    "NoDevices",
    "PipelineError",
    "PromotionFailed",
    "RegistryError",
    "RollbackFailed",
    "TrainingFailed",
    "TransientError",
    "VerificationFailed",
]


class PipelineError(Exception):
    """Base of every error a core raises on purpose."""


class TransientError(PipelineError):
    """Throttling or a server-side error that is worth retrying (the ASL retries it with backoff)."""


class ConfigurationError(PipelineError):
    """The function's environment lacks a value the input did not give either."""


class ModelRejected(PipelineError):
    """The model did not pass the quality gate, or the registry says it must not be deployed."""


class RegistryError(PipelineError):
    """The SageMaker model registry refused the request or lacks the model package."""


class ArtifactConflict(PipelineError):
    """An immutable artifact key already holds different bytes: never overwrite, investigate."""


class ComponentFailed(PipelineError):
    """Greengrass could not make a component version DEPLOYABLE (bad recipe or artifact)."""


class NoDevices(PipelineError):
    """The target thing group has no core devices, so nothing could be deployed or verified."""


class DeploymentFailed(PipelineError):
    """At least one device reported the deployment failed (or rolled back)."""


class DeploymentTimedOut(PipelineError):
    """The deployment's time budget (``poll.deployment.timeout_s``) passed with devices unfinished."""


class VerificationFailed(PipelineError):
    """A device answered golden requests wrongly, late, or with another model version."""


class PromotionFailed(PipelineError):
    """The verified versions could not be recorded as last known good."""


class RollbackFailed(PipelineError):
    """The rollback deployment could not be created."""
