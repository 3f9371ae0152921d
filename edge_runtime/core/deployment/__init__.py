"""Deployments: job documents in, a queue, a task per deployment, an activator, statuses out."""

from .activator import ComponentHooks, DeploymentActivator, Waits
from .models import ComponentSpec, Deployment
from .service import DeploymentService, Kernel
from .status import DeploymentStatusKeeper, error_details

__all__ = [
    "ComponentHooks",
    "ComponentSpec",
    "Deployment",
    "DeploymentActivator",
    "DeploymentService",
    "DeploymentStatusKeeper",
    "Kernel",
    "Waits",
    "error_details",
]
