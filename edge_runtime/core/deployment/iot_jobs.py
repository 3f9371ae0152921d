"""The device side of the IoT Jobs MQTT API, through AWS's own client (``awsiot.iotjobs``).

Topics and payloads are the SDK's, not ours, so the local control plane is exercised by the
client real devices use rather than by a mirror image of itself. As the nucleus's
``IotJobsHelper`` does, the core listens for ``notify-next``, asks for ``$next`` on every
(re)connection, and reports execution status with ``UpdateJobExecution``; a rejected update
(``InvalidStateTransition`` once the cloud has ended the execution, ``ResourceNotFound``, ...) is
logged and kept in :attr:`IotJobsHelper.rejections`.

``IotJobsClient`` takes the core's awscrt MQTT5 client and speaks through its MQTT 3.1.1-style
adapter (``Client.new_connection()``). That adapter does not restore subscriptions after a
clean-session reconnect (and ``resubscribe_existing_topics`` on it crashes awscrt 0.36), so
:meth:`IotJobsHelper.resume` subscribes again before asking for the next job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from awscrt import mqtt, mqtt5
from awsiot import iotjobs

log = logging.getLogger(__name__)

QOS = mqtt.QoS.AT_LEAST_ONCE
NEXT = "$next"  # the job id that names "the next pending execution" in DescribeJobExecution

OnExecution = Callable[[iotjobs.JobExecutionData], None]


class IotJobsHelper:
    """Job executions in (to ``on_execution``), execution updates out, for one thing."""

    def __init__(
        self, thing_name: str, connection: mqtt5.Client | mqtt.Connection, *, timeout_s: float = 10.0
    ) -> None:
        self.thing = thing_name
        self._connection = connection
        self.timeout_s = timeout_s
        self._client: iotjobs.IotJobsClient | None = None
        self._on_execution: OnExecution | None = None
        self._lock = threading.Lock()
        self.rejections: list[iotjobs.RejectedError] = []

    def connect(self, on_execution: OnExecution) -> None:
        """Subscribe (waiting for every SUBACK; a refusal raises), then ask for the next job."""
        self._client = iotjobs.IotJobsClient(self._connection)
        self._on_execution = on_execution
        for future in self._subscribe():
            future.result(self.timeout_s)
        self.request_next()

    def resume(self) -> None:
        """After a reconnection (clean session): subscribe again, then ask for the next job.

        Runs on the MQTT client's thread, so it does not wait for the SUBACKs; the broker handles
        the SUBSCRIBEs before the request that follows them on the same connection.
        """
        if self._client is None:
            return
        for future in self._subscribe():
            future.add_done_callback(_log_failure("resubscribe to jobs topics"))
        self.request_next()

    def request_next(self) -> None:
        """DescribeJobExecution of ``$next``; the answer arrives like a notification."""
        request = iotjobs.DescribeJobExecutionRequest(
            thing_name=self.thing, job_id=NEXT, client_token=f"{self.thing}-next"
        )
        self._send("DescribeJobExecution", lambda client: client.publish_describe_job_execution(request, QOS))

    def update(self, request: iotjobs.UpdateJobExecutionRequest) -> None:
        """UpdateJobExecution; never raises (a status that cannot be sent is logged)."""
        self._send(
            f"UpdateJobExecution of {request.job_id}",
            lambda client: client.publish_update_job_execution(request, QOS),
        )

    def _send(self, what: str, publish: Callable[[iotjobs.IotJobsClient], Future]) -> None:
        if self._client is None:
            log.error("%s before the jobs client connected", what)
            return
        try:
            publish(self._client).add_done_callback(_log_failure(what))
        except Exception:
            log.exception("%s failed", what)

    def _subscribe(self) -> list[Future]:
        client, thing = self._client, self.thing
        assert client is not None
        next_changed = iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing)
        described = iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id=NEXT)
        updated = iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+")
        pending = [
            client.subscribe_to_next_job_execution_changed_events(next_changed, QOS, self._on_next_changed),
            client.subscribe_to_describe_job_execution_accepted(described, QOS, self._on_described),
            client.subscribe_to_describe_job_execution_rejected(described, QOS, self._on_describe_rejected),
            client.subscribe_to_update_job_execution_accepted(updated, QOS, self._on_update_accepted),
            client.subscribe_to_update_job_execution_rejected(updated, QOS, self._on_update_rejected),
        ]
        return [future for future, _topic in pending]

    # -- incoming (on the MQTT client's thread) ---------------------------------------------------
    def _deliver(self, execution: iotjobs.JobExecutionData | None) -> None:
        if execution is None or self._on_execution is None:
            return  # nothing pending (or the pending one was canceled)
        try:
            self._on_execution(execution)
        except Exception:
            log.exception("job execution %s not handled", execution.job_id)

    def _on_next_changed(self, event: iotjobs.NextJobExecutionChangedEvent | None) -> None:
        if event is None:
            log.warning("ignoring a notify-next message that is not a job execution event")
            return
        self._deliver(event.execution)

    def _on_described(self, response: iotjobs.DescribeJobExecutionResponse | None) -> None:
        if response is None:
            log.warning("ignoring a $next/get answer that is not a job execution")
            return
        self._deliver(response.execution)

    def _on_describe_rejected(self, error: iotjobs.RejectedError | None) -> None:
        log.warning("DescribeJobExecution of $next rejected: %s", _describe(error))

    def _on_update_accepted(self, response: iotjobs.UpdateJobExecutionResponse | None) -> None:
        state = response.execution_state if response is not None else None
        log.debug("job execution update accepted: %s", state.status if state else "?")

    def _on_update_rejected(self, error: iotjobs.RejectedError | None) -> None:
        log.warning("job execution update rejected: %s", _describe(error))
        if error is not None:
            with self._lock:
                self.rejections.append(error)


def _describe(error: iotjobs.RejectedError | None) -> str:
    if error is None:
        return "(unreadable answer)"
    token = f" [{error.client_token}]" if error.client_token else ""
    return f"{error.code}: {error.message}{token}"


def _log_failure(what: str) -> Callable[[Future[Any]], None]:
    def check(future: Future[Any]) -> None:
        exc = future.exception()
        if exc is not None:
            log.error("%s failed: %s", what, exc)

    return check
