"""Lightweight simulated devices: real MQTT identities speaking IoT Jobs, without components.

Rollout and abort rules only show at fleet scale (an abort at 10 % of at least 10 executed
things, an exponential rate over minutes), and a full simulated core costs its own processes.
A job client is what the control plane sees of a core during a deployment and nothing more: a
thing registered through the IoT API (``CreateThing``, its own certificate from the local CA
registered and attached, membership of a thing group), one mTLS MQTT connection whose client id
is the thing name, and ``awsiot.iotjobs.IotJobsClient`` (the SDK the core uses,
``edge_runtime/core/deployment/iot_jobs.py``): it asks for ``$next`` on connecting, takes every
execution it is notified of to IN_PROGRESS and then to SUCCEEDED, or FAILED when it is one of the
failing devices (``failing`` names or a ``failure_share`` spread evenly over the fleet), with the
status details a Greengrass core sends. It becomes a core device by talking to the control plane,
as a nucleus does. Devices in ``silent`` take a job and never finish it (a device that hangs).

Resources: 1,000 clients live in one process on one awscrt event-loop group (the static default
bootstrap; awscrt threads, not one per device); each connection is a file descriptor here and in
the broker, so the process's soft open-files limit is raised (the broker raises its own); clients
connect and subscribe in batches so the broker's accept queue and the TLS handshakes stay bounded.
What each client saw is kept per job (:class:`JobOutcome`): when it was notified, what it
reported and whether the cloud refused the report, which is what rollout tests count.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from awscrt import mqtt
from awsiot import iotjobs, mqtt_connection_builder

from local_cloud.mqtt.broker import raise_open_files_limit
from local_cloud.mqtt.ca import CertificateAuthority, IssuedCertificate
from mlops_edge.environment.things import move_things, register_things

THING_PREFIX = "mlops-edge-jobclient-"
#: Connections opened (and subscribed) at once.
DEFAULT_BATCH = 50
QOS = mqtt.QoS.AT_LEAST_ONCE
NEXT = "$next"
#: The statusDetails a Greengrass core reports with each final status.
SUCCEEDED_DETAILS = {"detailed-deployment-status": "SUCCESSFUL"}
FAILED_DETAILS = {
    "detailed-deployment-status": "FAILED_NO_STATE_CHANGE",
    "deployment-failure-cause": "simulated install failure (job client told to fail)",
}


class JobClientError(RuntimeError):
    """The job clients could not be provisioned or connected."""


def job_client_names(count: int, prefix: str = THING_PREFIX) -> list[str]:
    """``<prefix>0001`` ... (four digits, so name order is numeric order up to 9,999)."""
    if count < 0:
        raise ValueError(f"count must be at least 0, not {count}")
    return [f"{prefix}{i:04d}" for i in range(1, count + 1)]


def spread_failures(names: Sequence[str], share: float) -> set[str]:
    """``share`` (0..1) of ``names``, spread evenly over the order (so failures come at the same
    pace as successes whatever the rollout order), rounded to the nearest device."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"failure share must be between 0 and 1, not {share}")
    count = round(share * len(names))
    return {names[(i * len(names)) // count] for i in range(count)} if count else set()


@dataclass
class JobOutcome:
    """What one device did with one job execution (times: ``time.monotonic()``)."""

    job_id: str
    notified_at: float
    status: str = "IN_PROGRESS"  # what the device reported last
    finished_at: float | None = None
    rejected: str | None = None  # the cloud refused the final report (e.g. the job was canceled)


class _Timers:
    """One thread running delayed calls for the whole fleet (not a thread per device)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="job-clients-timers", daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic() + delay_s, self._seq, fn))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _, _, fn = heapq.heappop(self._heap)
            with contextlib.suppress(Exception):
                fn()


class JobClient:
    """One device: its connection, its jobs client, its outcomes (guarded by the fleet's lock)."""

    def __init__(self, fleet: JobClientFleet, thing: str, issued: IssuedCertificate) -> None:
        self.fleet = fleet
        self.thing = thing
        self.outcomes: dict[str, JobOutcome] = {}
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=fleet.host,
            port=fleet.port,
            cert_filepath=str(issued.cert_path),
            pri_key_filepath=str(issued.key_path),
            ca_filepath=str(issued.ca_path),
            client_id=thing,
            clean_session=True,
            keep_alive_secs=30,
            reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=5,
            on_connection_resumed=self._on_resumed,
        )
        self.jobs = iotjobs.IotJobsClient(self.connection)

    # -- connection ----------------------------------------------------------------------------
    def subscribe(self) -> list[Future]:
        """The jobs topics a core listens on; the futures complete with each SUBACK."""
        thing, jobs = self.thing, self.jobs
        described = iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id=NEXT)
        pending = [
            jobs.subscribe_to_next_job_execution_changed_events(
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
                QOS,
                self._on_next_changed,
            ),
            jobs.subscribe_to_describe_job_execution_accepted(described, QOS, self._on_described),
            jobs.subscribe_to_update_job_execution_rejected(
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
                QOS,
                self._on_rejected,
            ),
        ]
        return [future for future, _topic in pending]

    def request_next(self) -> None:
        request = iotjobs.DescribeJobExecutionRequest(thing_name=self.thing, job_id=NEXT)
        self.jobs.publish_describe_job_execution(request, QOS)

    def report_health(self) -> None:
        """A fleet-status report, as a nucleus sends on connecting: healthy, no components."""
        payload = b'{"overallDeviceStatus":"HEALTHY","platform":"linux","runtime":"mlops-edge-job-client"}'
        self.connection.publish(f"$aws/things/{self.thing}/greengrassv2/health/json", payload, QOS)

    def _on_resumed(self, connection: Any, return_code: Any, session_present: bool, **_: Any) -> None:
        if not session_present:  # clean session: the subscriptions are gone
            for future in self.subscribe():
                future.add_done_callback(lambda f: f.exception())
            self.request_next()

    # -- executions (awscrt's threads) ---------------------------------------------------------
    def _on_next_changed(self, event: iotjobs.NextJobExecutionChangedEvent | None) -> None:
        if event is not None:
            self._take(event.execution)

    def _on_described(self, response: iotjobs.DescribeJobExecutionResponse | None) -> None:
        if response is not None:
            self._take(response.execution)

    def _take(self, execution: iotjobs.JobExecutionData | None) -> None:
        if execution is None or execution.job_id is None:
            return  # nothing pending
        job_id = execution.job_id
        with self.fleet.cond:
            if job_id in self.outcomes:
                return  # told again (notify-next and $next both name it)
            self.outcomes[job_id] = JobOutcome(job_id, time.monotonic())
            self.fleet.cond.notify_all()
        self._update(job_id, "IN_PROGRESS", {})
        if self.thing in self.fleet.silent:
            return
        self.fleet.timers.call_later(self.fleet.work_s, lambda: self._finish(job_id))

    def _finish(self, job_id: str) -> None:
        failing = self.thing in self.fleet.failing
        status, details = ("FAILED", FAILED_DETAILS) if failing else ("SUCCEEDED", SUCCEEDED_DETAILS)
        with self.fleet.cond:
            outcome = self.outcomes[job_id]
            outcome.status, outcome.finished_at = status, time.monotonic()
            self.fleet.cond.notify_all()
        self._update(job_id, status, details)

    def _update(self, job_id: str, status: str, details: dict[str, str]) -> None:
        request = iotjobs.UpdateJobExecutionRequest(
            thing_name=self.thing, job_id=job_id, status=status, status_details=details, client_token=job_id
        )
        with contextlib.suppress(Exception):  # not connected: the cloud's timeout will tell
            self.jobs.publish_update_job_execution(request, QOS)

    def _on_rejected(self, error: iotjobs.RejectedError | None) -> None:
        job_id = error.client_token if error is not None else None
        with self.fleet.cond:
            outcome = self.outcomes.get(job_id or "")
            if outcome is not None and error is not None:
                outcome.rejected = str(error.code)
                self.fleet.cond.notify_all()


class JobClientFleet:
    """N job clients against one local cloud: provision, connect, watch, stop.

    ``cloud`` is a running :class:`local_cloud.LocalCloud` (its ``mqtt`` endpoint and ``client()``);
    ``root`` holds the certificates. Use as a context manager so every connection is closed.
    """

    def __init__(
        self,
        cloud: Any,
        *,
        root: Path,
        thing_group: str | None,
        names: Sequence[str],
        failing: Iterable[str] = (),
        failure_share: float = 0.0,
        silent: Iterable[str] = (),
        work_s: float = 0.0,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if len(set(names)) != len(names):
            raise ValueError("job client names must be unique")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        unknown = (set(failing) | set(silent)) - set(names)
        if unknown:
            raise ValueError(f"not job clients of this fleet: {', '.join(sorted(unknown))}")
        self.cloud = cloud
        self.root = root
        self.thing_group = thing_group
        self.names = list(names)
        self.failing = set(failing) | spread_failures(self.names, failure_share)
        self.silent = set(silent)
        self.work_s = work_s
        self.batch = batch
        self.host, self.port = cloud.mqtt.host, int(cloud.mqtt.port)
        self.cond = threading.Condition()
        self.timers = _Timers()
        self.clients: dict[str, JobClient] = {}
        self.timings: dict[str, float] = {}

    def __enter__(self) -> JobClientFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> JobClientFleet:
        """Provision every thing, then connect, subscribe and ask for ``$next``, in batches."""
        self.provision()
        self.connect()
        return self

    def provision(self, workers: int = 16) -> None:
        """Certificates from the local CA, then things, certificates and membership via boto3."""
        started = time.monotonic()
        ca = CertificateAuthority(Path(self.cloud.mqtt.ca_path).parent)
        issued = {name: ca.issue(name, self.root / name) for name in self.names}
        self.timings["issue_s"] = time.monotonic() - started
        register_things(self.cloud.client("iot"), issued, self.thing_group, workers)
        self.clients = {name: JobClient(self, name, issued[name]) for name in self.names}
        self.timings["provision_s"] = time.monotonic() - started

    def connect(self, timeout_s: float = 60.0) -> None:
        """Connect and subscribe in batches, then report health and ask for ``$next``."""
        raise_open_files_limit(0, 2 * len(self.clients) + 1024)
        started = time.monotonic()
        clients = list(self.clients.values())
        for i in range(0, len(clients), self.batch):
            chunk = clients[i : i + self.batch]
            _wait_all([c.connection.connect() for c in chunk], timeout_s, "connect")
            subacks = _wait_all([f for c in chunk for f in c.subscribe()], timeout_s, "subscribe")
            if any(qos is None or int(qos) >= 0x80 for qos in subacks):  # the granted QoS per SUBACK
                raise JobClientError("job clients: the broker refused a jobs subscription (SUBACK failure)")
        self.timings["connect_s"] = time.monotonic() - started
        for client in clients:
            client.report_health()
            client.request_next()

    # -- watch ---------------------------------------------------------------------------------
    def outcomes(self, job_id: str) -> dict[str, JobOutcome]:
        """Thing name -> what it did with ``job_id`` (only devices that were told of it)."""
        with self.cond:
            return {
                name: JobOutcome(**vars(client.outcomes[job_id]))
                for name, client in self.clients.items()
                if job_id in client.outcomes
            }

    def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` (checked on every change any device sees) or the timeout."""
        with self.cond:
            return self.cond.wait_for(predicate, timeout_s)

    def wait_finished(self, job_id: str, count: int, timeout_s: float) -> dict[str, JobOutcome]:
        """Until ``count`` devices reported a final status of ``job_id``; returns the outcomes."""

        def done() -> bool:
            finished = sum(
                1 for c in self.clients.values() if (o := c.outcomes.get(job_id)) and o.finished_at
            )
            return finished >= count

        self.wait(done, timeout_s)
        return self.outcomes(job_id)

    # -- stop ----------------------------------------------------------------------------------
    def regroup(self, names: Iterable[str], group: str) -> None:
        """Move ``names`` from the fleet's thing group into ``group`` (created if missing), as a
        canary stage does: Greengrass combines every group a core is in, so stages are disjoint."""
        move_things(self.cloud.client("iot"), names, group, self.thing_group)

    def drop(self, thing: str) -> None:
        """Disconnect one device (it goes offline mid-rollout); its outcomes stay readable."""
        with contextlib.suppress(Exception):
            self.clients[thing].connection.disconnect().result(10)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Disconnect every client (in batches) and stop the timer thread."""
        clients, self.clients = list(self.clients.values()), {}
        self.timers.stop()
        for i in range(0, len(clients), self.batch):
            futures = []
            for client in clients[i : i + self.batch]:
                with contextlib.suppress(Exception):
                    futures.append(client.connection.disconnect())
            with contextlib.suppress(JobClientError):
                _wait_all(futures, timeout_s, "disconnect")


def _wait_all(futures: list[Future], timeout_s: float, what: str) -> list[Any]:
    """Every future's result, all within ``timeout_s``; the first failure raises JobClientError."""
    deadline = time.monotonic() + timeout_s
    results = []
    for future in futures:
        try:
            results.append(future.result(max(0.0, deadline - time.monotonic())))
        except Exception as exc:
            raise JobClientError(f"job clients: {what} failed: {exc!r}") from exc
    return results
