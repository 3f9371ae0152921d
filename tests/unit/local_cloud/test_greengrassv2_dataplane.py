"""The IoT Jobs device side: data-plane operations and the MQTT transport's answers, with the
publishes captured instead of a broker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_cloud.services.greengrassv2.arns import Target
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.exceptions import JobsError
from local_cloud.services.greengrassv2.jobs import JobsTransport
from local_cloud.services.greengrassv2.models import Deployment, ExecutionStatus, GreengrassBackend
from tests.unit.local_cloud.conftest import ARNS, Clock, FakeDirectory, group_arn, thing_arn


class CapturingTransport(JobsTransport):
    def __init__(self, plane: JobsDataPlane) -> None:
        super().__init__(plane)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        self.sent.append((topic, payload))

    def request(self, topic: str, payload: Any) -> list[tuple[str, dict[str, Any]]]:
        self.sent.clear()
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.route(topic, raw)
        return list(self.sent)


@pytest.fixture
def transport(plane: JobsDataPlane) -> CapturingTransport:
    return CapturingTransport(plane)


def _deploy(backend: GreengrassBackend, directory: FakeDirectory, thing: str = "t1") -> Deployment:
    directory.add(thing)
    deployment, _ = backend.create_deployment(Target.parse(thing_arn(thing)))
    return deployment


JOBS = "$aws/things/t1/jobs"


def test_next_get_answers_with_the_execution_and_echoes_the_token(
    backend: GreengrassBackend, directory: FakeDirectory, transport: CapturingTransport
) -> None:
    [(topic, empty)] = transport.request(f"{JOBS}/$next/get", {"clientToken": "c1"})
    assert topic == f"{JOBS}/$next/get/accepted" and empty.keys() == {"timestamp", "clientToken"}
    assert backend.core_device("t1").thing == "t1"  # a jobs request makes the device known
    deployment = _deploy(backend, directory)
    [(_, answer)] = transport.request(f"{JOBS}/$next/get", {"clientToken": "c2"})
    execution = answer["execution"]
    assert answer["clientToken"] == "c2" and execution["jobId"] == deployment.job_id
    assert execution["status"] == "QUEUED" and execution["versionNumber"] == 1
    assert execution["jobDocument"]["deploymentId"] == deployment.deployment_id
    [(_, bare)] = transport.request(f"{JOBS}/$next/get", {"includeJobDocument": False})
    assert "jobDocument" not in bare["execution"] and "clientToken" not in bare


def test_update_accepted_then_notify_next(
    backend: GreengrassBackend, directory: FakeDirectory, transport: CapturingTransport
) -> None:
    deployment = _deploy(backend, directory)
    update = f"{JOBS}/{deployment.job_id}/update"
    [(topic, answer)] = transport.request(
        update, {"status": "IN_PROGRESS", "expectedVersion": 1, "clientToken": "u1"}
    )
    assert topic == f"{update}/accepted" and answer["clientToken"] == "u1"
    assert answer["executionState"] == {"status": "IN_PROGRESS", "statusDetails": {}, "versionNumber": 2}
    sent = transport.request(
        update, {"status": "SUCCEEDED", "statusDetails": {"detailed-deployment-status": "SUCCESSFUL"}}
    )
    # the answer first, then what is next (nothing): a device waiting for its answer misses nothing
    assert [t for t, _ in sent] == [f"{update}/accepted", f"{JOBS}/notify-next"]
    assert "execution" not in sent[1][1]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"status": "SUCCEEDED", "expectedVersion": 7}, "VersionMismatch"),
        ({"status": "QUEUED"}, "InvalidRequest"),
        ({"status": "SUCCEEDED", "expectedVersion": "1"}, "InvalidRequest"),
        ({"status": "SUCCEEDED", "statusDetails": "x"}, "InvalidRequest"),
        (b"{not json", "InvalidJson"),
        ([1, 2], "InvalidRequest"),
    ],
)
def test_update_rejections_carry_the_protocol_codes(
    backend: GreengrassBackend,
    directory: FakeDirectory,
    transport: CapturingTransport,
    payload: Any,
    code: str,
) -> None:
    deployment = _deploy(backend, directory)
    update = f"{JOBS}/{deployment.job_id}/update"
    [(topic, answer)] = transport.request(update, payload)
    assert topic == f"{update}/rejected" and answer["code"] == code
    assert backend.executions.find("t1", deployment.job_id).status is ExecutionStatus.QUEUED
    if code == "VersionMismatch":
        assert answer["executionState"] == {"status": "QUEUED", "statusDetails": {}, "versionNumber": 1}


def test_terminal_execution_refuses_updates_with_invalid_state_transition(
    backend: GreengrassBackend, directory: FakeDirectory, transport: CapturingTransport
) -> None:
    deployment = _deploy(backend, directory)
    update = f"{JOBS}/{deployment.job_id}/update"
    transport.request(
        update, {"status": "REJECTED", "statusDetails": {"detailed-deployment-status": "REJECTED"}}
    )
    [(topic, answer)] = transport.request(update, {"status": "SUCCEEDED", "clientToken": "late"})
    assert topic == f"{update}/rejected" and answer["code"] == "InvalidStateTransition"
    assert answer["clientToken"] == "late" and answer["executionState"]["status"] == "REJECTED"
    [(_, unknown)] = transport.request(f"{JOBS}/no-such-job/update", {"status": "SUCCEEDED"})
    assert unknown["code"] == "ResourceNotFound"


def test_pending_start_next_and_describe(
    backend: GreengrassBackend, directory: FakeDirectory, transport: CapturingTransport, clock: Clock
) -> None:
    directory.add("t1", "g1", "g2")
    first, _ = backend.create_deployment(Target.parse(group_arn("g1")))
    clock.advance(1)
    second, _ = backend.create_deployment(Target.parse(group_arn("g2")))
    [(_, pending)] = transport.request(f"{JOBS}/get", {"clientToken": "p"})
    assert [j["jobId"] for j in pending["queuedJobs"]] == [first.job_id, second.job_id]
    assert pending["inProgressJobs"] == [] and pending["clientToken"] == "p"
    [(topic, started)] = transport.request(f"{JOBS}/start-next", {"statusDetails": {"step": "download"}})
    assert topic == f"{JOBS}/start-next/accepted"
    assert started["execution"]["jobId"] == first.job_id and started["execution"]["status"] == "IN_PROGRESS"
    assert started["execution"]["statusDetails"] == {"step": "download"}
    [(_, again)] = transport.request(f"{JOBS}/start-next", {})
    assert again["execution"]["versionNumber"] == 2  # already IN_PROGRESS: unchanged
    [(_, described)] = transport.request(f"{JOBS}/{second.job_id}/get", {})
    assert described["execution"]["status"] == "QUEUED"
    [(topic, missing)] = transport.request(f"{JOBS}/nope/get", {"clientToken": "d"})
    assert topic == f"{JOBS}/nope/get/rejected" and missing["code"] == "ResourceNotFound"


def test_health_reports_make_and_update_core_devices(
    plane: JobsDataPlane, transport: CapturingTransport
) -> None:
    report = {
        "overallDeviceStatus": "HEALTHY",
        "nucleusVersion": "2.12.0",
        "platform": "linux",
        "architecture": "amd64",
        "components": [
            {
                "componentName": "com.a",
                "version": "1.0.0",
                "state": "RUNNING",
                "isRoot": True,
                "fleetConfigArns": ["arn:1"],
            },
        ],
    }
    assert transport.request("$aws/things/t9/greengrassv2/health/json", report) == []
    device = plane.backend.core_device("t9")
    [component] = device.components
    assert (device.core_version, component.lifecycle_state, component.installation_source) == (
        "2.12.0",
        "RUNNING",
        "arn:1",
    )
    changed_at = component.last_status_change
    plane.backend.clock.advance(10)  # type: ignore[attr-defined]
    plane.report_health("t9", report)
    [same] = plane.backend.core_device("t9").components
    assert same.last_status_change == changed_at and same.last_reported == changed_at + 10


def test_timeouts_notify_the_device(
    backend: GreengrassBackend, directory: FakeDirectory, transport: CapturingTransport, clock: Clock
) -> None:
    directory.add("t1")
    deployment, _ = backend.create_deployment(
        Target.parse(thing_arn("t1")), job_configuration={"timeoutConfig": {"inProgressTimeoutInMinutes": 1}}
    )
    transport.request(f"{JOBS}/{deployment.job_id}/update", {"status": "IN_PROGRESS"})
    clock.advance(61)
    assert transport.plane.time_out_executions(60.0) == ["t1"]
    [effective] = backend.effective_deployments("t1")
    assert effective["coreDeviceExecutionStatus"] == "TIMED_OUT"
    assert effective["reason"] == "no result within 1 minutes"
    with pytest.raises(JobsError) as late:
        transport.plane.update_execution("t1", deployment.job_id, "SUCCEEDED")
    assert late.value.code == "InvalidStateTransition"
    assert deployment.status.value == "ACTIVE"  # a timeout is not the device's result


def test_a_batch_of_requests_is_saved_once_before_any_answer(directory: FakeDirectory, clock: Clock) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    writes: list[int] = []  # how many messages were out at each write

    class CountingStore:
        def load(self) -> None:
            return None

        def write(self, data: dict[str, Any]) -> None:
            writes.append(len(sent))

    backend = GreengrassBackend(ARNS, directory, CountingStore(), clock=clock)  # type: ignore[arg-type]
    transport = CapturingTransport(JobsDataPlane(backend))
    transport.sent = sent
    for thing in ("t1", "t2", "t3"):
        directory.add(thing, "g")
    deployment, _ = backend.create_deployment(Target.parse(group_arn("g")))
    writes.clear()
    batch = [
        (f"$aws/things/{t}/jobs/{deployment.job_id}/update", b'{"status": "SUCCEEDED"}')
        for t in ("t1", "t2", "t3")
    ]
    transport.route_batch(batch)
    assert writes == [0]  # one write, and nothing published before it
    accepted = [topic for topic, _ in sent if topic.endswith("/update/accepted")]
    assert len(accepted) == 3 and sum(topic.endswith("/notify-next") for topic, _ in sent) == 3
