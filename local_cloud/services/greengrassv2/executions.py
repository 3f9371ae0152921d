"""Job executions: the IoT Jobs state of one deployment on one core device.

A status moves only along ``TRANSITIONS``, the job-execution lifecycle AWS IoT Jobs documents
("Jobs and job execution states"): QUEUED → IN_PROGRESS → a terminal status, a device may finish
straight from QUEUED, and the cloud cancels, removes or times executions out. Terminal statuses
have no way out, so a late or repeated report is refused with the protocol's own
``InvalidStateTransition``; ``expectedVersion`` gives devices optimistic concurrency
(``VersionMismatch``). Nothing here knows MQTT (``jobs.py`` carries the messages) or Greengrass
deployments (``models.py`` ties executions to them); callers hold the backend's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from local_cloud.services.greengrassv2.exceptions import JobsError


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


_S = ExecutionStatus
#: Allowed next statuses. IN_PROGRESS → IN_PROGRESS is a progress report (new details, new version).
TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    _S.QUEUED: frozenset({_S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED, _S.REJECTED, _S.CANCELED, _S.REMOVED}),
    _S.IN_PROGRESS: frozenset(
        {_S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED, _S.REJECTED, _S.TIMED_OUT, _S.CANCELED, _S.REMOVED}
    ),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.TIMED_OUT: frozenset(),
    _S.REJECTED: frozenset(),
    _S.REMOVED: frozenset(),
    _S.CANCELED: frozenset(),
}
TERMINAL = frozenset(status for status, allowed in TRANSITIONS.items() if not allowed)
PENDING = frozenset({_S.QUEUED, _S.IN_PROGRESS})
#: What UpdateJobExecution accepts from a device; the rest are the cloud's to decide.
DEVICE_REPORTABLE = frozenset({_S.IN_PROGRESS, _S.SUCCEEDED, _S.FAILED, _S.REJECTED})


@dataclass
class JobExecution:
    """One thing's execution of one job (= one Greengrass deployment)."""

    thing: str
    job_id: str
    deployment_id: str
    number: int
    queued_at: float
    status: ExecutionStatus = ExecutionStatus.QUEUED
    started_at: float | None = None
    updated_at: float = 0.0
    version: int = 1
    status_details: dict[str, Any] = field(default_factory=dict)
    #: why the cloud moved it (cancel, supersede, timeout); a device's report clears it
    reason: str = ""
    #: False while a job's rollout has not notified the thing yet (``rollout.py``): QUEUED, but
    #: the device is not told and does not see it among its pending executions
    released: bool = True

    def move(
        self, to: ExecutionStatus, now: float, *, reason: str = "", details: dict[str, Any] | None = None
    ) -> None:
        """The only way a status changes: checked against the table, versioned, timestamped."""
        if to not in TRANSITIONS[self.status]:
            raise JobsError("InvalidStateTransition", f"execution is {self.status}", self.state())
        if to is ExecutionStatus.IN_PROGRESS and self.started_at is None:
            self.started_at = now  # the in-progress timeout counts from here
        self.status = to
        self.reason = reason
        self.updated_at = now
        self.version += 1
        if details is not None:
            self.status_details = dict(details)

    def report(
        self, status: str, details: dict[str, Any] | None, expected_version: int | None, now: float
    ) -> None:
        """A device's UpdateJobExecution; statusDetails left out stay as they were."""
        to = ExecutionStatus.__members__.get(status)
        if to not in DEVICE_REPORTABLE:
            raise JobsError("InvalidRequest", f"bad status {status}")
        if expected_version is not None and expected_version != self.version:
            raise JobsError(
                "VersionMismatch",
                f"expected version {expected_version}, the execution is at version {self.version}",
                self.state(),
            )
        self.move(to, now, details=details)

    def timed_out(self, now: float, limit_s: float) -> bool:
        return (
            self.status is ExecutionStatus.IN_PROGRESS
            and self.started_at is not None
            and now - self.started_at > limit_s
        )

    # -- the protocol's shapes -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JobExecutionState."""
        return {
            "status": self.status.value,
            "statusDetails": dict(self.status_details),
            "versionNumber": self.version,
        }

    def summary(self) -> dict[str, Any]:
        """JobExecutionSummary (GetPendingJobExecutions)."""
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "queuedAt": int(self.queued_at),
            "lastUpdatedAt": int(self.updated_at),
            "versionNumber": self.version,
            "executionNumber": self.number,
        }
        if self.started_at is not None:
            out["startedAt"] = int(self.started_at)
        return out

    def data(self, document: dict[str, Any] | None) -> dict[str, Any]:
        """JobExecutionData (notify-next, DescribeJobExecution, StartNextPendingJobExecution)."""
        out: dict[str, Any] = {
            "jobId": self.job_id,
            "thingName": self.thing,
            "status": self.status.value,
            "queuedAt": int(self.queued_at),
            "lastUpdatedAt": int(self.updated_at),
            "executionNumber": self.number,
            "versionNumber": self.version,
        }
        if self.started_at is not None:
            out["startedAt"] = int(self.started_at)
        if self.status_details:
            out["statusDetails"] = dict(self.status_details)
        if document is not None:
            out["jobDocument"] = document
        return out

    # -- persistence ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "thingName": self.thing,
            "jobId": self.job_id,
            "deploymentId": self.deployment_id,
            "executionNumber": self.number,
            "status": self.status.value,
            "queuedAt": self.queued_at,
            "startedAt": self.started_at,
            "lastUpdatedAt": self.updated_at,
            "versionNumber": self.version,
            "statusDetails": self.status_details,
            "reason": self.reason,
            "released": self.released,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> JobExecution:
        return cls(
            thing=data["thingName"],
            job_id=data["jobId"],
            deployment_id=data["deploymentId"],
            number=int(data["executionNumber"]),
            queued_at=float(data["queuedAt"]),
            status=ExecutionStatus(data["status"]),
            started_at=data.get("startedAt"),
            updated_at=float(data["lastUpdatedAt"]),
            version=int(data["versionNumber"]),
            status_details=dict(data.get("statusDetails") or {}),
            reason=str(data.get("reason") or ""),
            released=bool(data.get("released", True)),
        )


class ExecutionBook:
    """Every thing's executions, ``thing -> deploymentId -> execution``; no lock of its own."""

    def __init__(self) -> None:
        self.by_thing: dict[str, dict[str, JobExecution]] = {}

    def things(self) -> list[str]:
        return list(self.by_thing)

    def of_thing(self, thing: str) -> list[JobExecution]:
        return list(self.by_thing.get(thing, {}).values())

    def get(self, thing: str, deployment_id: str) -> JobExecution | None:
        return self.by_thing.get(thing, {}).get(deployment_id)

    def find(self, thing: str, job_id: str) -> JobExecution | None:
        return next((e for e in self.of_thing(thing) if e.job_id == job_id), None)

    def of_deployment(self, deployment_id: str) -> list[JobExecution]:
        """The deployment's executions, by thing name."""
        found = [e for things in self.by_thing.values() if (e := things.get(deployment_id)) is not None]
        return sorted(found, key=lambda e: e.thing)

    def add(
        self, thing: str, deployment_id: str, job_id: str, now: float, *, released: bool = True
    ) -> JobExecution:
        executions = self.by_thing.setdefault(thing, {})
        execution = JobExecution(
            thing, job_id, deployment_id, len(executions) + 1, now, updated_at=now, released=released
        )
        executions[deployment_id] = execution
        return execution

    def pending(self, thing: str) -> list[JobExecution]:
        """IoT Jobs order: IN_PROGRESS executions first, then QUEUED ones oldest first; executions
        a rollout has not released yet are not the device's to see."""
        pending = [e for e in self.of_thing(thing) if e.status in PENDING and e.released]
        return sorted(pending, key=lambda e: (e.status is not ExecutionStatus.IN_PROGRESS, e.queued_at))

    def next_pending(self, thing: str) -> JobExecution | None:
        pending = self.pending(thing)
        return pending[0] if pending else None

    def end(
        self,
        deployment_id: str,
        to: ExecutionStatus,
        reason: str,
        now: float,
        among: frozenset[ExecutionStatus] = PENDING,
    ) -> list[str]:
        """Move the deployment's executions whose status is in ``among``; the things touched."""
        touched = []
        for thing, executions in self.by_thing.items():
            execution = executions.get(deployment_id)
            if execution is not None and execution.status in among:
                execution.move(to, now, reason=reason)
                touched.append(thing)
        return touched

    def expire(
        self, now: float, timeout_minutes: Callable[[JobExecution], Any], minute_s: float
    ) -> list[str]:
        """TIMED_OUT for IN_PROGRESS executions past their job's in-progress timeout.

        ``minute_s`` is the length of a minute (tests shorten it); returns the things touched.
        """
        touched = []
        for thing, executions in self.by_thing.items():
            for execution in executions.values():
                if execution.status is not ExecutionStatus.IN_PROGRESS:
                    continue  # the cheap test first: the ticker runs this up to 50 times a second
                minutes = timeout_minutes(execution)
                if minutes and execution.timed_out(now, float(minutes) * minute_s):
                    reason = f"no result within {minutes} minutes"
                    execution.move(ExecutionStatus.TIMED_OUT, now, reason=reason)
                    touched.append(thing)
        return touched

    def forget(self, deployment_id: str) -> None:
        for executions in self.by_thing.values():
            executions.pop(deployment_id, None)

    def to_state(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            thing: {deployment_id: e.to_state() for deployment_id, e in executions.items()}
            for thing, executions in self.by_thing.items()
        }

    @classmethod
    def from_state(cls, data: dict[str, dict[str, dict[str, Any]]]) -> ExecutionBook:
        book = cls()
        book.by_thing = {
            thing: {deployment_id: JobExecution.from_state(e) for deployment_id, e in executions.items()}
            for thing, executions in data.items()
        }
        return book
