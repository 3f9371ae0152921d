"""Deployment status back to the cloud: IoT Jobs execution updates (contracts §4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from awsiot import iotjobs

from ..exceptions import CoreError
from .models import Deployment

log = logging.getLogger(__name__)

#: sends an UpdateJobExecution (``IotJobsHelper.update``); must not raise
Update = Callable[[iotjobs.UpdateJobExecutionRequest], None]


def error_details(error: BaseException | None) -> dict[str, str]:
    """``deployment-error-stack`` / ``-types`` (JSON lists, as Greengrass sends them) and cause."""
    if error is None:
        return {}
    stack = list(getattr(error, "stack", CoreError.stack))
    types = list(getattr(error, "types", CoreError.types))
    return {
        "deployment-failure-cause": str(error),
        "deployment-error-stack": json.dumps(stack),
        "deployment-error-types": json.dumps(types),
    }


class DeploymentStatusKeeper:
    """Turns deployment outcomes into job execution updates, with Greengrass's status details."""

    def __init__(self, thing_name: str, update: Update) -> None:
        self.thing = thing_name
        self._update = update
        self.history: list[dict[str, Any]] = []

    def _send(self, deployment: Deployment, status: str, details: dict[str, str]) -> None:
        self.history.append({"jobId": deployment.job_id, "status": status, "statusDetails": details})
        log.info("deployment %s: %s %s", deployment.deployment_id, status, details)
        request = iotjobs.UpdateJobExecutionRequest(
            thing_name=self.thing,
            job_id=deployment.job_id,
            status=status,
            status_details=details,
            client_token=deployment.job_id,  # names the job in a rejection, which carries no topic
        )
        self._update(request)

    def in_progress(self, deployment: Deployment) -> None:
        self._send(deployment, "IN_PROGRESS", {})

    def succeeded(self, deployment: Deployment) -> None:
        self._send(deployment, "SUCCEEDED", {"detailed-deployment-status": "SUCCESSFUL"})

    def failed(self, deployment: Deployment, detailed: str, error: BaseException | None) -> None:
        status = "REJECTED" if detailed == "REJECTED" else "FAILED"
        self._send(deployment, status, {"detailed-deployment-status": detailed, **error_details(error)})
