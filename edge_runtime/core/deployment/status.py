"""Deployment status back to the cloud: IoT Jobs execution updates (contracts §4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from ..exceptions import CoreError
from .models import Deployment

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], None]


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
    """Publishes job execution updates on ``$aws/things/{thing}/jobs/{jobId}/update``."""

    def __init__(self, thing_name: str, publish: Publish) -> None:
        self.thing = thing_name
        self._publish = publish
        self.history: list[dict[str, Any]] = []

    def _send(self, deployment: Deployment, status: str, details: dict[str, str]) -> None:
        body = {"status": status, "statusDetails": details}
        self.history.append({"jobId": deployment.job_id, **body})
        log.info("deployment %s: %s %s", deployment.deployment_id, status, details)
        topic = f"$aws/things/{self.thing}/jobs/{deployment.job_id}/update"
        self._publish(topic, json.dumps(body).encode())

    def in_progress(self, deployment: Deployment) -> None:
        self._send(deployment, "IN_PROGRESS", {})

    def succeeded(self, deployment: Deployment) -> None:
        self._send(deployment, "SUCCEEDED", {"detailed-deployment-status": "SUCCESSFUL"})

    def failed(self, deployment: Deployment, detailed: str, error: BaseException | None) -> None:
        status = "REJECTED" if detailed == "REJECTED" else "FAILED"
        self._send(deployment, status, {"detailed-deployment-status": detailed, **error_details(error)})
