"""Deployments: the record, its policies and job document, and how one device lives it.

A deployment targets a thing or a thing group and reaches each core device as an IoT job
execution (``executions.py``). A group deployment is continuous (stays ACTIVE, reaches devices
that join later); a thing deployment ends with its device's result; a newer deployment to the
same target supersedes the older one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from local_cloud.services.greengrassv2.arns import Target, TargetKind
from local_cloud.services.greengrassv2.executions import ExecutionStatus, JobExecution
from local_cloud.services.greengrassv2.rollout import RolloutState


class DeploymentStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    INACTIVE = "INACTIVE"


@dataclass(frozen=True)
class DeploymentPolicies:
    """DeploymentPolicies with the service's defaults filled in."""

    failure_handling: str = "ROLLBACK"
    update_timeout_s: int = 60
    update_action: str = "NOTIFY_COMPONENTS"
    validation_timeout_s: int = 30

    @classmethod
    def from_api(cls, given: dict[str, Any] | None) -> DeploymentPolicies:
        given = given or {}
        update = given.get("componentUpdatePolicy") or {}
        validation = given.get("configurationValidationPolicy") or {}
        return cls(
            failure_handling=given.get("failureHandlingPolicy", "ROLLBACK"),
            update_timeout_s=int(update.get("timeoutInSeconds", 60)),
            update_action=update.get("action", "NOTIFY_COMPONENTS"),
            validation_timeout_s=int(validation.get("timeoutInSeconds", 30)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "failureHandlingPolicy": self.failure_handling,
            "componentUpdatePolicy": {
                "timeoutInSeconds": self.update_timeout_s,
                "action": self.update_action,
            },
            "configurationValidationPolicy": {"timeoutInSeconds": self.validation_timeout_s},
        }


@dataclass
class Deployment:
    deployment_id: str
    target: Target
    revision: int
    name: str
    job_id: str
    job_arn: str
    configuration_arn: str
    #: ComponentDeploymentSpecifications exactly as given (GetDeployment hands them back)
    components: dict[str, dict[str, Any]]
    policies: DeploymentPolicies
    job_configuration: dict[str, Any]
    created: float
    parent_target_arn: str | None = None
    status: DeploymentStatus = DeploymentStatus.ACTIVE
    is_latest: bool = True
    #: the IoT job's rollout so far; None: every execution is released at once (``rollout.py``)
    rollout: RolloutState | None = None
    #: set when an abortConfig criterion canceled the job: DescribeJob's reasonCode and comment
    abort: dict[str, Any] | None = None
    #: when the IoT job last changed (DescribeJob's lastUpdatedAt / completedAt)
    job_updated: float = 0.0

    @property
    def continuous(self) -> bool:
        """A thing-group deployment stays ACTIVE and reaches devices that join the group later."""
        return self.target.kind is TargetKind.THING_GROUP

    @property
    def live(self) -> bool:
        """Still handing out executions: the target's latest deployment and ACTIVE."""
        return self.is_latest and self.status is DeploymentStatus.ACTIVE

    @property
    def in_progress_timeout_minutes(self) -> Any:
        return ((self.job_configuration or {}).get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")

    @property
    def job_status(self) -> str:
        """The IoT job's status: GreengrassV2 cancels the job of a deployment it replaces or
        cancels; a thing deployment's job completes with its one execution; a group's job is
        continuous and stays IN_PROGRESS until then."""
        if self.status in (DeploymentStatus.CANCELED, DeploymentStatus.INACTIVE):
            return "CANCELED"
        if self.status in (DeploymentStatus.COMPLETED, DeploymentStatus.FAILED):
            return "COMPLETED"
        return "IN_PROGRESS"

    def supersede(self) -> None:
        """A newer deployment to the same target replaces this one."""
        if self.is_latest:
            self.is_latest = False
            if self.status is DeploymentStatus.ACTIVE:
                self.status = DeploymentStatus.INACTIVE

    def settle(self, result: ExecutionStatus) -> None:
        """A thing-target deployment ends with its one device's result; a group one never does."""
        if self.continuous or self.status is not DeploymentStatus.ACTIVE:
            return
        if result is ExecutionStatus.SUCCEEDED:
            self.status = DeploymentStatus.COMPLETED
        elif result in (ExecutionStatus.FAILED, ExecutionStatus.REJECTED):
            self.status = DeploymentStatus.FAILED

    def job_document(self) -> dict[str, Any]:
        """The Greengrass fleet configuration the nucleus reads from the IoT job (contracts §4)."""
        return {
            "deploymentId": self.deployment_id,
            "configurationArn": self.configuration_arn,
            "groupName": self.target.group_name,
            "creationTimestamp": int(self.created * 1000),
            "components": {
                name: {
                    "version": spec.get("componentVersion"),
                    "configurationUpdate": spec.get("configurationUpdate") or {},
                    "runWith": spec.get("runWith") or {},
                }
                for name, spec in self.components.items()
            },
            "failureHandlingPolicy": self.policies.failure_handling,
            "componentUpdatePolicy": {
                "timeout": self.policies.update_timeout_s,
                "action": self.policies.update_action,
            },
            "configurationValidationPolicy": {"timeoutInSeconds": self.policies.validation_timeout_s},
            "requiredCapabilities": [],
        }

    def summary(self) -> dict[str, Any]:
        """Deployment of ListDeployments."""
        return {
            "targetArn": self.target.arn,
            "revisionId": str(self.revision),
            "deploymentId": self.deployment_id,
            "deploymentName": self.name,
            "creationTimestamp": self.created,
            "deploymentStatus": self.status.value,
            "isLatestForTarget": self.is_latest,
            "parentTargetArn": self.parent_target_arn,
        }

    def to_dict(self) -> dict[str, Any]:
        """GetDeployment (without tags)."""
        return {
            **self.summary(),
            "iotJobId": self.job_id,
            "iotJobArn": self.job_arn,
            "components": self.components,
            "deploymentPolicies": self.policies.to_dict(),
            "iotJobConfiguration": self.job_configuration,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            **self.to_dict(),
            "configurationArn": self.configuration_arn,
            "rollout": self.rollout.to_state() if self.rollout else None,
            "abort": self.abort,
            "jobUpdatedAt": self.job_updated,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Deployment:
        return cls(
            deployment_id=data["deploymentId"],
            target=Target.parse(data["targetArn"]),
            revision=int(data["revisionId"]),
            name=data["deploymentName"],
            job_id=data["iotJobId"],
            job_arn=data["iotJobArn"],
            configuration_arn=data["configurationArn"],
            components=dict(data.get("components") or {}),
            policies=DeploymentPolicies.from_api(data.get("deploymentPolicies")),
            job_configuration=dict(data.get("iotJobConfiguration") or {}),
            created=float(data["creationTimestamp"]),
            parent_target_arn=data.get("parentTargetArn"),
            status=DeploymentStatus(data["deploymentStatus"]),
            is_latest=bool(data["isLatestForTarget"]),
            rollout=RolloutState.from_state(data.get("rollout")),
            abort=data.get("abort"),
            job_updated=float(data.get("jobUpdatedAt") or data["creationTimestamp"]),
        )


def _json_list(value: Any) -> list[str]:
    """The nucleus reports error stacks/types as JSON-encoded lists inside a string map."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
            return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
        except ValueError:
            return [value]
    return []


def effective_deployment(deployment: Deployment, execution: JobExecution) -> dict[str, Any]:
    """EffectiveDeployment: a deployment as one core device lives it.

    The nucleus's statusDetails become the API's fields: ``reason`` is the failure cause, else the
    detailed status (e.g. FAILED_ROLLBACK_COMPLETE, for which the API has no field), unless the
    cloud ended the execution itself; ``statusDetails`` holds only errorStack/errorTypes.
    """
    details = execution.status_details
    detailed = details.get("detailed-deployment-status")
    reason = execution.reason or str(details.get("deployment-failure-cause") or detailed or "")
    errors = {
        "errorStack": _json_list(details.get("deployment-error-stack")),
        "errorTypes": _json_list(details.get("deployment-error-types")),
    }
    return {
        "deploymentId": deployment.deployment_id,
        "deploymentName": deployment.name,
        "iotJobId": deployment.job_id,
        "iotJobArn": deployment.job_arn,
        "targetArn": deployment.target.arn,
        "coreDeviceExecutionStatus": execution.status.value,
        "reason": reason or None,
        "creationTimestamp": deployment.created,
        "modifiedTimestamp": execution.updated_at,
        "statusDetails": {k: v for k, v in errors.items() if v} or None,
    }
