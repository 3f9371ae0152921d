"""Job executions: the IoT Jobs transition table, device reports, ordering and timeouts."""

from __future__ import annotations

import pytest

from local_cloud.services.greengrassv2.exceptions import JobsError
from local_cloud.services.greengrassv2.executions import (
    DEVICE_REPORTABLE,
    TERMINAL,
    TRANSITIONS,
    ExecutionBook,
    ExecutionStatus,
    JobExecution,
)

S = ExecutionStatus

# Written from AWS IoT's "Jobs and job execution states", independently of the code's table.
EXPECTED_ALLOWED = {
    (S.QUEUED, S.IN_PROGRESS),
    (S.QUEUED, S.SUCCEEDED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.REJECTED),
    (S.QUEUED, S.CANCELED),
    (S.QUEUED, S.REMOVED),
    (S.IN_PROGRESS, S.IN_PROGRESS),
    (S.IN_PROGRESS, S.SUCCEEDED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.REJECTED),
    (S.IN_PROGRESS, S.TIMED_OUT),
    (S.IN_PROGRESS, S.CANCELED),
    (S.IN_PROGRESS, S.REMOVED),
}


def _execution(status: ExecutionStatus = S.QUEUED, version: int = 1) -> JobExecution:
    return JobExecution(
        "thing-1", "job-1", "dep-1", 1, 100.0, status=status, updated_at=100.0, version=version
    )


@pytest.mark.parametrize(
    ("current", "to", "allowed"),
    [(a, b, (a, b) in EXPECTED_ALLOWED) for a in S for b in S],
    ids=lambda v: str(v),
)
def test_transition_table(current: ExecutionStatus, to: ExecutionStatus, allowed: bool) -> None:
    execution = _execution(current, version=3)
    if allowed:
        execution.move(to, 200.0, reason="r")
        assert (execution.status, execution.version, execution.updated_at) == (to, 4, 200.0)
        return
    with pytest.raises(JobsError) as refused:
        execution.move(to, 200.0)
    assert refused.value.code == "InvalidStateTransition"
    # the error carries the unchanged state, so a device can resynchronise without asking again
    assert refused.value.execution_state == {"status": current.value, "statusDetails": {}, "versionNumber": 3}
    assert (execution.status, execution.version) == (current, 3)


def test_terminal_statuses_are_exactly_those_without_a_way_out() -> None:
    assert set(TRANSITIONS) == set(S)
    assert {S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.REJECTED, S.REMOVED, S.CANCELED} == TERMINAL
    assert all(s.terminal == (s in TERMINAL) for s in S)
    assert {S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED} == DEVICE_REPORTABLE


def test_started_at_is_the_first_in_progress_and_details_replace() -> None:
    execution = _execution()
    execution.move(S.IN_PROGRESS, 150.0, details={"step": "1"})
    execution.move(S.IN_PROGRESS, 160.0, details={"step": "2"})
    assert execution.started_at == 150.0 and execution.status_details == {"step": "2"}
    execution.move(S.SUCCEEDED, 170.0)  # no details given: kept
    assert execution.status_details == {"step": "2"} and execution.version == 4


@pytest.mark.parametrize("status", ["QUEUED", "CANCELED", "TIMED_OUT", "REMOVED", "DONE", ""])
def test_device_cannot_report_cloud_statuses(status: str) -> None:
    with pytest.raises(JobsError) as refused:
        _execution().report(status, None, None, 200.0)
    assert refused.value.code == "InvalidRequest" and refused.value.execution_state is None


def test_expected_version_gives_version_mismatch_before_the_transition_check() -> None:
    execution = _execution(S.SUCCEEDED, version=3)
    with pytest.raises(JobsError) as refused:
        execution.report("FAILED", None, 2, 200.0)
    assert refused.value.code == "VersionMismatch"
    assert refused.value.execution_state == {"status": "SUCCEEDED", "statusDetails": {}, "versionNumber": 3}
    with pytest.raises(JobsError, match="execution is SUCCEEDED") as terminal:
        execution.report("FAILED", None, 3, 200.0)
    assert terminal.value.code == "InvalidStateTransition"
    fresh = _execution(version=5)
    fresh.report("IN_PROGRESS", {"a": "b"}, 5, 200.0)
    assert fresh.state() == {"status": "IN_PROGRESS", "statusDetails": {"a": "b"}, "versionNumber": 6}


def test_protocol_shapes() -> None:
    execution = _execution()
    execution.move(S.IN_PROGRESS, 150.5, details={"k": "v"})
    assert execution.data({"doc": 1}) == {
        "jobId": "job-1",
        "thingName": "thing-1",
        "status": "IN_PROGRESS",
        "queuedAt": 100,
        "lastUpdatedAt": 150,
        "startedAt": 150,
        "executionNumber": 1,
        "versionNumber": 2,
        "statusDetails": {"k": "v"},
        "jobDocument": {"doc": 1},
    }
    assert "jobDocument" not in execution.data(None)
    assert execution.summary() == {
        "jobId": "job-1",
        "queuedAt": 100,
        "startedAt": 150,
        "lastUpdatedAt": 150,
        "versionNumber": 2,
        "executionNumber": 1,
    }
    assert JobExecution.from_state(execution.to_state()) == execution


def test_book_orders_pending_in_progress_first_then_oldest_and_numbers_per_thing() -> None:
    book = ExecutionBook()
    first = book.add("t", "d1", "j1", 10.0)
    second = book.add("t", "d2", "j2", 20.0)
    third = book.add("t", "d3", "j3", 30.0)
    assert [e.number for e in (first, second, third)] == [1, 2, 3]
    assert book.next_pending("t") is first
    third.move(S.IN_PROGRESS, 40.0)
    first.move(S.SUCCEEDED, 41.0)
    assert [e.job_id for e in book.pending("t")] == ["j3", "j2"]
    assert book.find("t", "j2") is second and book.find("t", "nope") is None
    assert book.next_pending("other") is None


def test_book_end_moves_only_the_statuses_asked_for() -> None:
    book = ExecutionBook()
    queued = book.add("a", "d", "j", 10.0)
    running = book.add("b", "d", "j", 10.0)
    running.move(S.IN_PROGRESS, 11.0)
    assert book.end("d", S.CANCELED, "superseded", 12.0, among=frozenset({S.QUEUED})) == ["a"]
    assert (queued.status, queued.reason, running.status) == (S.CANCELED, "superseded", S.IN_PROGRESS)
    assert book.end("d", S.CANCELED, "canceled", 13.0) == ["b"]
    book.forget("d")
    assert book.of_thing("a") == [] and book.of_thing("b") == []


def test_book_expire_times_out_in_progress_past_the_limit() -> None:
    book = ExecutionBook()
    running = book.add("a", "d", "j", 0.0)
    queued = book.add("b", "d", "j", 0.0)
    running.move(S.IN_PROGRESS, 100.0)
    limit = {"d": 2}
    assert book.expire(219.0, lambda e: limit.get(e.deployment_id), minute_s=60.0) == []
    assert book.expire(221.0, lambda e: limit.get(e.deployment_id), minute_s=60.0) == ["a"]
    assert running.status is S.TIMED_OUT and running.reason == "no result within 2 minutes"
    assert queued.status is S.QUEUED  # the in-progress timer never started
    assert book.expire(999.0, lambda e: None, minute_s=60.0) == []
