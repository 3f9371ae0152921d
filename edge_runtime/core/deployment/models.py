"""Deployments as they arrive: an IoT job execution whose document is the fleet configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from awsiot import iotjobs

from ..exceptions import InvalidDeployment

FAILURE_POLICIES = ("ROLLBACK", "DO_NOTHING")


@dataclass(frozen=True)
class ComponentSpec:
    """One root component of a deployment: pinned version and configuration update."""

    name: str
    version: str
    configuration_update: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """A job execution carrying a Greengrass deployment document (contracts §4)."""

    job_id: str
    deployment_id: str
    configuration_arn: str
    group_name: str
    components: dict[str, ComponentSpec]
    failure_policy: str

    @classmethod
    def from_execution(cls, execution: iotjobs.JobExecutionData) -> Deployment:
        """Read the execution's job document; :class:`InvalidDeployment` says why it cannot run."""
        job_id = execution.job_id
        doc = execution.job_document
        if not job_id or not isinstance(doc, dict):
            raise InvalidDeployment("job execution lacks jobId or jobDocument")
        components = {}
        for name, spec in (doc.get("components") or {}).items():
            if not isinstance(spec, dict) or not spec.get("version"):
                raise InvalidDeployment(f"component {name} has no version")
            components[name] = ComponentSpec(
                name, str(spec["version"]), spec.get("configurationUpdate") or {}
            )
        policy = str(doc.get("failureHandlingPolicy") or "ROLLBACK").upper()
        if policy not in FAILURE_POLICIES:
            raise InvalidDeployment(f"unknown failureHandlingPolicy {policy}")
        arn = str(doc.get("configurationArn") or "")
        group = str(
            doc.get("groupName") or (arn.split(":configuration:")[-1].rsplit(":", 1)[0] if arn else "LOCAL")
        )
        return cls(
            job_id=str(job_id),
            deployment_id=str(doc.get("deploymentId") or job_id),
            configuration_arn=arn,
            group_name=group,
            components=components,
            failure_policy=policy,
        )
