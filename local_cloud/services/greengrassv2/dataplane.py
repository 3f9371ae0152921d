"""The IoT Jobs device operations over the backend's state: how deployments reach core devices.

These are the operations a core device calls on MQTT (``jobs.py`` carries them):
DescribeJobExecution (``$next`` included), GetPendingJobExecutions, StartNextPendingJobExecution
and UpdateJobExecution, plus the fleet-status reports that make a core device known. Answers are
the protocol's own shapes; refusals are ``JobsError`` with the protocol's codes. It is part of the
backend (same lock, same records), kept apart only because the device side is a different API
from the greengrassv2 control plane in ``models.py``.
"""

from __future__ import annotations

from typing import Any

from local_cloud.services.greengrassv2 import jobrules
from local_cloud.services.greengrassv2.exceptions import JobsError
from local_cloud.services.greengrassv2.executions import ExecutionStatus, JobExecution
from local_cloud.services.greengrassv2.models import DeploymentStatus, GreengrassBackend


class JobsDataPlane:
    def __init__(self, backend: GreengrassBackend) -> None:
        self.backend = backend

    # -- core devices --------------------------------------------------------------------------
    def seen(self, thing: str) -> None:
        """A core device exists from the first time it talks to us."""
        with self.backend.lock:
            if self.backend.devices.touch(thing, self.backend.clock()):
                self.backend.save()

    def report_health(self, thing: str, report: dict[str, Any]) -> None:
        with self.backend.lock:
            self.backend.devices.report_health(thing, report, self.backend.clock())
            self.backend.save()

    # -- job executions ------------------------------------------------------------------------
    def _data(self, execution: JobExecution, include_document: bool = True) -> dict[str, Any]:
        document = (
            self.backend.deployments[execution.deployment_id].job_document() if include_document else None
        )
        return execution.data(document)

    def next_execution(self, thing: str, include_document: bool = True) -> dict[str, Any] | None:
        """JobExecutionData of what the thing should do next (notify-next, ``$next``); None: nothing."""
        self.backend.reconcile(thing)
        with self.backend.lock:
            execution = self.backend.executions.next_pending(thing)
            return self._data(execution, include_document) if execution else None

    def describe_execution(
        self, thing: str, job_id: str, include_document: bool = True
    ) -> dict[str, Any] | None:
        """DescribeJobExecution; ``$next`` is the next pending execution (None when there is none)."""
        self.seen(thing)
        if job_id == "$next":
            return self.next_execution(thing, include_document)
        with self.backend.lock:
            execution = self.backend.executions.find(thing, job_id)
            if execution is None or not execution.released:  # a rollout has not notified it yet
                raise JobsError("ResourceNotFound", f"no execution of job {job_id} for {thing}")
            return self._data(execution, include_document)

    def pending_executions(self, thing: str) -> dict[str, list[dict[str, Any]]]:
        """GetPendingJobExecutions."""
        self.seen(thing)
        self.backend.reconcile(thing)
        with self.backend.lock:
            pending = self.backend.executions.pending(thing)
        return {
            "inProgressJobs": [e.summary() for e in pending if e.status is ExecutionStatus.IN_PROGRESS],
            "queuedJobs": [e.summary() for e in pending if e.status is ExecutionStatus.QUEUED],
        }

    def start_next(self, thing: str, details: dict[str, Any] | None) -> dict[str, Any] | None:
        """StartNextPendingJobExecution: the next pending execution, moved to IN_PROGRESS if QUEUED."""
        self.seen(thing)
        self.backend.reconcile(thing)
        with self.backend.lock:
            execution = self.backend.executions.next_pending(thing)
            if execution is None:
                return None
            if execution.status is ExecutionStatus.QUEUED:
                execution.move(ExecutionStatus.IN_PROGRESS, self.backend.clock(), details=details)
                self.backend.save()
            return self._data(execution)

    def update_execution(
        self,
        thing: str,
        job_id: str,
        status: str,
        details: dict[str, Any] | None = None,
        expected_version: int | None = None,
        include_document: bool = False,
    ) -> dict[str, Any]:
        """UpdateJobExecution from the device; a thing-target deployment ends with the result.

        Raises ``JobsError`` with the protocol's code (ResourceNotFound, InvalidRequest,
        VersionMismatch, InvalidStateTransition).
        """
        return self.report(thing, job_id, status, details, expected_version, include_document)[0]

    def report(
        self,
        thing: str,
        job_id: str,
        status: str,
        details: dict[str, Any] | None = None,
        expected_version: int | None = None,
        include_document: bool = False,
    ) -> tuple[dict[str, Any], list[str]]:
        """UpdateJobExecution, and the other things to notify when the result met the job's
        abortConfig (the job and its unfinished executions are canceled at once)."""
        self.seen(thing)
        with self.backend.lock:
            execution = self.backend.executions.find(thing, job_id)
            if (
                execution is None
                or not execution.released
                or execution.deployment_id not in self.backend.deployments
            ):
                raise JobsError("ResourceNotFound", f"no execution of job {job_id} for {thing}")
            now = self.backend.clock()
            execution.report(status, details, expected_version, now)
            deployment = self.backend.deployments[execution.deployment_id]
            deployment.settle(execution.status)
            if deployment.status is not DeploymentStatus.ACTIVE:
                deployment.job_updated = now
            aborted = jobrules.check_abort(deployment, self.backend.executions, now)
            self.backend.save()
            answer: dict[str, Any] = {"executionState": execution.state()}
            if include_document:
                answer["jobDocument"] = deployment.job_document()
            return answer, aborted

    def time_out_executions(self, minute_s: float) -> list[str]:
        """IN_PROGRESS executions past their job's in-progress timeout become TIMED_OUT (with a
        "minute" of ``minute_s`` seconds), counting toward abort criteria."""
        return jobrules.expire(self.backend, self.backend.clock(), minute_s)

    def advance(self) -> list[str]:
        """The clock's tick (``jobrules.advance``): rollouts, timeouts, aborts."""
        return jobrules.advance(self.backend)

    def things_with_executions(self) -> list[str]:
        with self.backend.lock:
            return self.backend.executions.things()
