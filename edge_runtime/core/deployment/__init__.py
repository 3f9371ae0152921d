"""Deployments: job executions in (IoT Jobs), a queue, a task per deployment, an activator, statuses out."""

from .activator import ComponentHooks, DeploymentActivator, Waits
from .iot_jobs import IotJobsHelper
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
    "IotJobsHelper",
    "Kernel",
    "Waits",
    "error_details",
]
