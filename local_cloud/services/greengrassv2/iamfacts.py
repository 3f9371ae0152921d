"""What the IAM authorizer needs to know of the greengrassv2 backend's records.

A GreengrassV2 call is authorized on more than the resources its parameters name: AWS also checks
the IoT actions the service performs for the caller (``local_cloud.iam.dependencies.FACTS``).
Those actions name resources only the backend knows (a deployment's job and target, the jobs and
thing groups effective on a core device, the jobs a new deployment supersedes); this module reads
them, under the backend's lock, so the rules of the records stay in ``models.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_cloud.services.greengrassv2.arns import TargetKind
from local_cloud.services.greengrassv2.jobstate import JobState


def iam_facts(backend: JobState, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The facts of one operation: ``{}`` for operations without any; None when the deployment
    named does not exist (the call ends in ResourceNotFound before any dependent action)."""
    if operation in ("GetDeployment", "CancelDeployment"):
        with backend.lock:
            deployment = backend.deployments.get(str(params.get("deploymentId") or ""))
            if deployment is None:
                return None
            return {"jobId": deployment.job_id, "targetArn": deployment.target.arn}
    if operation == "ListEffectiveDeployments":
        thing = str(params.get("coreDeviceThingName") or "")
        backend.reconcile(thing)  # the executions the answer will list
        with backend.lock:
            found = [
                backend.deployments[e.deployment_id]
                for e in backend.executions.of_thing(thing)
                if e.deployment_id in backend.deployments
            ]
        groups = {d.target.name for d in found if d.target.kind is TargetKind.THING_GROUP}
        return {"jobIds": sorted({d.job_id for d in found}), "thingGroupNames": sorted(groups)}
    if operation == "CreateDeployment":
        target = str(params.get("targetArn") or "")
        with backend.lock:
            live = [d.job_id for d in backend.deployments.values() if d.target.arn == target and d.live]
        return {"previousJobIds": sorted(live)}
    return {}
