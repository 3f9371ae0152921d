"""Deployments: job documents in, a queue, a task per deployment, statuses out."""

from .models import ComponentSpec, Deployment
from .service import DeploymentService
from .status import DeploymentStatusKeeper, error_details

__all__ = ["ComponentSpec", "Deployment", "DeploymentService", "DeploymentStatusKeeper", "error_details"]
