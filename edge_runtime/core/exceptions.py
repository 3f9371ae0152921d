"""Errors of the simulated core, each carrying the Greengrass error stack and error types.

The deployment status reports ``deployment-error-stack`` (most general first) and
``deployment-error-types``, as the nucleus does, so the control plane and the pipeline can tell a
bad artifact from a crashing component.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class; ``stack`` and ``types`` go into the deployment status."""

    stack: tuple[str, ...] = ("DEPLOYMENT_FAILURE",)
    types: tuple[str, ...] = ("UNKNOWN_ERROR",)


class RecipeError(CoreError):
    """A recipe the core cannot use."""

    stack = ("DEPLOYMENT_FAILURE", "COMPONENT_RECIPE_ERROR")
    types = ("COMPONENT_RECIPE_ERROR",)


class ResolutionError(CoreError):
    """No component version satisfies every requirement, or the cloud refused to resolve."""

    stack = ("DEPLOYMENT_FAILURE", "NO_AVAILABLE_COMPONENT_VERSION")
    types = ("DEPENDENCY_ERROR",)


class CloudError(CoreError):
    """A control-plane or S3 call failed."""

    stack = ("DEPLOYMENT_FAILURE", "CLOUD_SERVICE_ERROR")
    types = ("CLOUD_SERVICE_ERROR",)


class ArtifactDownloadError(CoreError):
    """An artifact could not be fetched or unpacked."""

    stack = ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR")
    types = ("DEVICE_ERROR",)


class ArtifactChecksumMismatch(ArtifactDownloadError):
    """Downloaded bytes do not match the recipe's digest: nothing from the deployment may run."""

    stack = ("DEPLOYMENT_FAILURE", "ARTIFACT_DOWNLOAD_ERROR", "ARTIFACT_CHECKSUM_MISMATCH")
    types = ("ARTIFACT_ERROR",)


class ComponentBroken(CoreError):
    """A component of the deployment ended BROKEN (or never became healthy in time)."""

    stack = ("DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN")
    types = ("COMPONENT_ERROR",)


class InvalidDeployment(CoreError):
    """The job document is not a deployment the core understands."""

    stack = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_DOCUMENT_NOT_VALID")
    types = ("REQUEST_ERROR",)
