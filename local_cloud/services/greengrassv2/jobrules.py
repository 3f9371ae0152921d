"""The IoT job behind each deployment: its rollout, abort and timeout rules applied, and its
state in the IoT API's own shapes (DescribeJob, ListJobExecutionsForJob).

The greengrassv2 backend is the one source of truth for these jobs: moto's IoT backend never
hears of them, so ``iotjobs.py`` answers the IoT operations on them from here. The rules
themselves (how many to release this minute, which abort criterion is met) are in
``rollout.py``; this module applies them to a deployment's executions. Callers hold the
backend's lock and save afterwards; every function returns the things whose next execution
changed, to be sent notify-next once the caller's own answer is out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from local_cloud.services.greengrassv2.deployments import Deployment, DeploymentStatus
from local_cloud.services.greengrassv2.executions import ExecutionBook, ExecutionStatus, JobExecution
from local_cloud.services.greengrassv2.jobstate import JobState
from local_cloud.services.greengrassv2.rollout import abort_comment, met_criterion

#: DescribeJob's reasonCode when an abortConfig criterion canceled the job (the local cloud's
#: word: AWS documents the field, not the value it uses for an automatic abort)
ABORT_REASON_CODE = "ABORT_CRITERIA_MET"

_COUNTS = {
    ExecutionStatus.QUEUED: "numberOfQueuedThings",
    ExecutionStatus.IN_PROGRESS: "numberOfInProgressThings",
    ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
    ExecutionStatus.FAILED: "numberOfFailedThings",
    ExecutionStatus.REJECTED: "numberOfRejectedThings",
    ExecutionStatus.TIMED_OUT: "numberOfTimedOutThings",
    ExecutionStatus.CANCELED: "numberOfCanceledThings",
    ExecutionStatus.REMOVED: "numberOfRemovedThings",
}


def release(deployment: Deployment, book: ExecutionBook, now: float, minute_s: float) -> list[str]:
    """Notify as many waiting things as the rollout allows this minute, oldest first."""
    if not deployment.live:  # before the scan: the ticker calls this for every deployment
        return []
    executions = book.of_deployment(deployment.deployment_id)
    waiting = [e for e in executions if not e.released and e.status is ExecutionStatus.QUEUED]
    if not waiting:
        return []
    allowed = len(waiting)
    if deployment.rollout is not None:
        succeeded = sum(1 for e in executions if e.status is ExecutionStatus.SUCCEEDED)
        allowed = deployment.rollout.allowance(now, minute_s, succeeded)
    chosen = sorted(waiting, key=lambda e: (e.queued_at, e.thing))[:allowed]
    for execution in chosen:
        execution.released = True
    if deployment.rollout is not None and chosen:
        deployment.rollout.released(len(chosen))
    return [e.thing for e in chosen]


def check_abort(deployment: Deployment, book: ExecutionBook, now: float) -> list[str]:
    """Cancel the job, and every execution not ended yet, once an abort criterion is met."""
    config = deployment.job_configuration or {}
    criteria = (config.get("abortConfig") or {}).get("criteriaList") or []
    if not criteria or deployment.status is not DeploymentStatus.ACTIVE:
        return []
    counts = Counter(e.status for e in book.of_deployment(deployment.deployment_id))
    met = met_criterion(criteria, counts)
    if met is None:
        return []
    comment = abort_comment(*met)
    deployment.status = DeploymentStatus.CANCELED
    deployment.abort = {"reasonCode": ABORT_REASON_CODE, "comment": comment}
    deployment.job_updated = now
    return book.end(
        deployment.deployment_id, ExecutionStatus.CANCELED, f"the job was aborted: {comment}", now
    )


def advance(backend: JobState) -> list[str]:
    """One tick of the clock: rollouts release their next things, in-progress executions past
    their timeout become TIMED_OUT, and timeouts count toward abort criteria."""
    with backend.lock:
        now, minute_s = backend.clock(), backend.minute_s()
        touched: list[str] = []
        for deployment in list(backend.deployments.values()):
            touched += release(deployment, backend.executions, now, minute_s)
        if touched:
            backend.save()
        touched += expire(backend, now, minute_s)
    return sorted(set(touched))


def expire(backend: JobState, now: float, minute_s: float) -> list[str]:
    """TIMED_OUT for executions past ``inProgressTimeoutInMinutes`` (minutes of ``minute_s``
    seconds); a job whose abortConfig the timeouts meet is canceled."""

    def minutes(execution: JobExecution) -> Any:
        deployment = backend.deployments.get(execution.deployment_id)
        return deployment.in_progress_timeout_minutes if deployment else None

    with backend.lock:
        touched = backend.executions.expire(now, minutes, minute_s)
        if touched:
            for deployment in list(backend.deployments.values()):
                touched += check_abort(deployment, backend.executions, now)
            backend.save()
    return touched


# -- the IoT API's view ------------------------------------------------------------------------
def describe_job(deployment: Deployment, executions: list[JobExecution]) -> dict[str, Any]:
    """DescribeJob's ``job``: status, counts per execution status, the job's settings echoed."""
    counts = Counter(e.status for e in executions)
    config = deployment.job_configuration or {}
    status = deployment.job_status
    job: dict[str, Any] = {
        "jobArn": deployment.job_arn,
        "jobId": deployment.job_id,
        "targetSelection": "CONTINUOUS" if deployment.continuous else "SNAPSHOT",
        "status": status,
        "forceCanceled": False,
        "targets": [deployment.target.arn],
        "description": deployment.name,
        "createdAt": deployment.created,
        "lastUpdatedAt": max(deployment.job_updated, deployment.created),
        "jobProcessDetails": {
            "processingTargets": [],
            **{name: counts.get(s, 0) for s, name in _COUNTS.items()},
        },
        # rolling out or canceling: executions still to be released
        "isConcurrent": status == "IN_PROGRESS" and any(not e.released for e in executions),
    }
    if status != "IN_PROGRESS":
        job["completedAt"] = job["lastUpdatedAt"]
    if deployment.abort:
        job.update(deployment.abort)
    for key in ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig"):
        if config.get(key):
            job[key] = config[key]
    return job


def execution_summary(execution: JobExecution, thing_arn: str) -> dict[str, Any]:
    """JobExecutionSummaryForJob."""
    summary: dict[str, Any] = {
        "status": execution.status.value,
        "queuedAt": execution.queued_at,
        "lastUpdatedAt": execution.updated_at,
        "executionNumber": execution.number,
    }
    if execution.started_at is not None:
        summary["startedAt"] = execution.started_at
    return {"thingArn": thing_arn, "jobExecutionSummary": summary}
