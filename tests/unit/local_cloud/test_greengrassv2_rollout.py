"""IoT Jobs' rollout, abort and timeout rules on a deployment's job, on a fake clock whose
"minute" is shortened the way ``MLOPS_EDGE_LOCAL_MINUTE_S`` shortens the endpoint's."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from local_cloud.services.greengrassv2 import jobrules
from local_cloud.services.greengrassv2.arns import Target
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.deployments import Deployment
from local_cloud.services.greengrassv2.exceptions import JobsError, ValidationException
from local_cloud.services.greengrassv2.jobstate import JobState
from local_cloud.services.greengrassv2.models import DeploymentStatus, ExecutionStatus, GreengrassBackend
from local_cloud.services.greengrassv2.rollout import env_minute_s
from tests.unit.local_cloud.conftest import ARNS, Clock, FakeDirectory, group_arn

MINUTE = 0.5  # a local "minute" of half a second


@pytest.fixture
def gg(directory: FakeDirectory, clock: Clock) -> GreengrassBackend:
    counter = itertools.count(1)
    return GreengrassBackend(
        ARNS, directory, None, clock=clock, new_id=lambda: f"id-{next(counter)}", minute_s=lambda: MINUTE
    )


def _fleet(directory: FakeDirectory, count: int, group: str = "fleet") -> list[str]:
    things = [f"d{i:04d}" for i in range(count)]
    for thing in things:
        directory.add(thing, group)
    return things


def _deploy(
    gg: GreengrassBackend, config: dict[str, Any], group: str = "fleet"
) -> tuple[Deployment, list[str]]:
    return gg.create_deployment(Target.parse(group_arn(group)), job_configuration=config)


def _per_minute(gg: GreengrassBackend, clock: Clock, first: list[str], minutes: int) -> list[int]:
    """Things notified in each minute, ticking sixteen times a minute (1/32 s: exact in binary, so
    ticks land on the minute boundaries, as the transport's twenty a minute nearly do)."""
    counts = [len(first)]
    for _ in range(minutes - 1):
        released = 0
        for _ in range(16):
            clock.advance(MINUTE / 16)
            released += len(jobrules.advance(gg))
        counts.append(released)
    return counts


# -- rollout -----------------------------------------------------------------------------------


def test_maximum_per_minute_notifies_at_most_that_many_each_minute(
    gg: GreengrassBackend, directory: FakeDirectory, clock: Clock
) -> None:
    things = _fleet(directory, 25)
    _, notified = _deploy(gg, {"jobExecutionsRolloutConfig": {"maximumPerMinute": 10}})
    assert notified == things[:10]
    plane = JobsDataPlane(gg)
    assert plane.pending_executions(things[10]) == {"inProgressJobs": [], "queuedJobs": []}
    assert plane.next_execution(things[10]) is None
    assert _per_minute(gg, clock, notified, 4) == [10, 10, 5, 0]


def _documented_exponential(total: int, base: int, factor: float, every: int) -> list[int]:
    """The rule as written: a minute notifies base × factor^(times the criterion was met), at
    most 1000; the criterion is met once for every ``every`` things notified."""
    out, notified = [], 0
    while notified < total:
        rate = min(1000, int(base * factor ** (notified // every) + 1e-9))
        out.append(min(rate, total - notified))
        notified += out[-1]
    return out


@pytest.mark.parametrize(("base", "factor", "every"), [(2, 2.0, 4), (3, 1.5, 5), (5, 1.1, 10)])
def test_exponential_rate_grows_each_time_the_notified_criterion_is_met(
    gg: GreengrassBackend, directory: FakeDirectory, clock: Clock, base: int, factor: float, every: int
) -> None:
    _fleet(directory, 120)
    rate = {"baseRatePerMinute": base, "incrementFactor": factor}
    config = {"exponentialRate": {**rate, "rateIncreaseCriteria": {"numberOfNotifiedThings": every}}}
    _, notified = _deploy(gg, {"jobExecutionsRolloutConfig": config})
    expected = _documented_exponential(120, base, factor, every)
    observed = _per_minute(gg, clock, notified, len(expected))
    assert sum(observed) == 120
    assert all(abs(o - e) <= 1 for o, e in zip(observed, expected, strict=True)), (observed, expected)


def test_exponential_rate_on_succeeded_things_waits_for_successes(
    gg: GreengrassBackend, directory: FakeDirectory, clock: Clock
) -> None:
    _fleet(directory, 40)
    criteria = {"numberOfSucceededThings": 2}
    config = {
        "exponentialRate": {"baseRatePerMinute": 2, "incrementFactor": 3, "rateIncreaseCriteria": criteria}
    }
    deployment, notified = _deploy(gg, {"jobExecutionsRolloutConfig": config})
    plane = JobsDataPlane(gg)
    assert _per_minute(gg, clock, notified, 2) == [2, 2]  # nobody succeeded: the rate stays
    for thing in [e.thing for e in gg.executions.of_deployment(deployment.deployment_id) if e.released]:
        plane.update_execution(thing, deployment.job_id, "SUCCEEDED")
    assert _per_minute(gg, clock, [], 2)[1] == 2 * 3**2  # 4 succeeded: criterion met twice


# -- abort -------------------------------------------------------------------------------------

ABORT_10_OF_10 = {"abortConfig": {"criteriaList": [
    {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 10, "minNumberOfExecutedThings": 10}
]}}  # fmt: skip


def test_abort_10_percent_min_10_cancels_at_the_tenth_executed_thing(
    gg: GreengrassBackend, directory: FakeDirectory
) -> None:
    things = _fleet(directory, 30)
    deployment, _ = _deploy(gg, ABORT_10_OF_10)
    plane = JobsDataPlane(gg)
    plane.update_execution(things[29], deployment.job_id, "IN_PROGRESS")
    results = ["FAILED", "FAILED"] + ["SUCCEEDED"] * 7  # 2 of 9 failed: not enough things yet
    for thing, result in zip(things, results, strict=False):
        assert plane.report(thing, deployment.job_id, result)[1] == []
    assert deployment.status is DeploymentStatus.ACTIVE
    _, aborted = plane.report(things[9], deployment.job_id, "SUCCEEDED")  # 2 of 10 = 20 % > 10 %
    assert aborted == things[10:]  # queued, unreleased or running: all told
    assert deployment.status is DeploymentStatus.CANCELED and deployment.job_status == "CANCELED"
    job = jobrules.describe_job(*gg.job(deployment.job_id))  # type: ignore[misc]
    details = job["jobProcessDetails"]
    assert (details["numberOfFailedThings"], details["numberOfSucceededThings"]) == (2, 8)
    assert details["numberOfCanceledThings"] == 20 and details["numberOfInProgressThings"] == 0
    assert job["reasonCode"] == jobrules.ABORT_REASON_CODE and "2 of 10" in job["comment"]
    assert gg.executions.get(things[29], deployment.deployment_id).status is ExecutionStatus.CANCELED  # type: ignore[union-attr]
    with pytest.raises(JobsError):
        plane.update_execution(things[15], deployment.job_id, "SUCCEEDED")


def test_abort_threshold_must_be_exceeded_not_reached(
    gg: GreengrassBackend, directory: FakeDirectory
) -> None:
    things = _fleet(directory, 20)
    deployment, _ = _deploy(gg, ABORT_10_OF_10)
    plane = JobsDataPlane(gg)
    for thing in things[:10]:  # 1 of 10 failed: exactly 10 %, not more
        assert (
            plane.report(thing, deployment.job_id, "FAILED" if thing == things[0] else "SUCCEEDED")[1] == []
        )
    assert plane.report(things[10], deployment.job_id, "FAILED")[1] == things[11:]  # 2 of 11


def test_timeouts_count_toward_abort(gg: GreengrassBackend, directory: FakeDirectory, clock: Clock) -> None:
    things = _fleet(directory, 4)
    criterion = {
        "failureType": "TIMED_OUT",
        "action": "CANCEL",
        "thresholdPercentage": 50,
        "minNumberOfExecutedThings": 3,
    }
    config = {
        "abortConfig": {"criteriaList": [criterion]},
        "timeoutConfig": {"inProgressTimeoutInMinutes": 2},
    }
    deployment, _ = _deploy(gg, config)
    plane = JobsDataPlane(gg)
    plane.update_execution(things[0], deployment.job_id, "SUCCEEDED")
    for thing in things[1:3]:
        plane.update_execution(thing, deployment.job_id, "IN_PROGRESS")
    clock.advance(2 * MINUTE - 0.01)
    assert jobrules.advance(gg) == []
    clock.advance(0.02)  # two scaled minutes: both time out, 2 of 3 executed > 50 %
    assert jobrules.advance(gg) == sorted(things[1:])
    assert deployment.status is DeploymentStatus.CANCELED
    statuses = [e.status for e in gg.executions.of_deployment(deployment.deployment_id)]
    assert statuses == [
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.CANCELED,
    ]


# -- continuous jobs ---------------------------------------------------------------------------


def test_a_thing_joining_the_group_gets_the_latest_deployment_within_the_rollout(
    gg: GreengrassBackend, directory: FakeDirectory, clock: Clock
) -> None:
    _fleet(directory, 2)
    deployment, notified = _deploy(gg, {"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}})
    assert len(notified) == 2
    directory.add("late", "fleet")
    assert gg.reconcile("late") == []  # this minute's two are spent
    clock.advance(MINUTE)
    assert jobrules.advance(gg) == ["late"]
    assert JobsDataPlane(gg).next_execution("late")["jobId"] == deployment.job_id  # type: ignore[index]
    directory.groups["fleet"].discard("late")
    directory.add("gone", "fleet")
    gg.reconcile("gone")
    directory.groups["fleet"].discard("gone")
    assert gg.leave_group("gone", "fleet") == ["gone"]
    assert gg.executions.get("gone", deployment.deployment_id).status is ExecutionStatus.REMOVED  # type: ignore[union-attr]
    assert gg.reconcile("gone") == [] and JobsDataPlane(gg).next_execution("gone") is None


# -- the job through the IoT API's shapes, its persistence, its validation ------------------------


def test_describe_job_echoes_the_settings_and_counts_unreleased_as_queued(
    gg: GreengrassBackend, directory: FakeDirectory
) -> None:
    _fleet(directory, 5)
    config = {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 2},
        "timeoutConfig": {"inProgressTimeoutInMinutes": 9},
    }
    deployment, _ = _deploy(gg, config)
    found = gg.job(deployment.job_id)
    assert found is not None and gg.job("other") is None
    job = jobrules.describe_job(*found)
    assert job["status"] == "IN_PROGRESS" and job["targetSelection"] == "CONTINUOUS" and job["isConcurrent"]
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 5
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 2} and "abortConfig" not in job
    summary = jobrules.execution_summary(found[1][0], "arn:t")
    assert summary["jobExecutionSummary"]["status"] == "QUEUED" and summary["thingArn"] == "arn:t"
    restored = Deployment.from_state(deployment.to_state())
    assert restored.rollout == deployment.rollout and restored.rollout is not None


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}, "jobExecutionsRolloutConfig.maximumPerMinute"),
        ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}, "jobExecutionsRolloutConfig.maximumPerMinute"),
        (
            {"jobExecutionsRolloutConfig": {"exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 1.55, "rateIncreaseCriteria": {"numberOfNotifiedThings": 1}}}},
            "exponentialRate.incrementFactor",
        ),
        (
            {"jobExecutionsRolloutConfig": {"exponentialRate": {"baseRatePerMinute": 5, "incrementFactor": 2}}},
            "exponentialRate.rateIncreaseCriteria",
        ),
        (
            {"abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 100.5, "minNumberOfExecutedThings": 1}]}},
            "criteriaList.1.member.thresholdPercentage",
        ),
        ({"abortConfig": {"criteriaList": [{"failureType": "OOPS", "action": "CANCEL", "thresholdPercentage": 1, "minNumberOfExecutedThings": 1}]}}, "failureType"),
        ({"abortConfig": {"criteriaList": []}}, "abortConfig.criteriaList"),
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}, "timeoutConfig.inProgressTimeoutInMinutes"),
        ({"timeoutConfig": {"inProgressTimeoutInMinutes": "5"}}, "timeoutConfig.inProgressTimeoutInMinutes"),
    ],
)  # fmt: skip
def test_job_configuration_out_of_range_is_a_validation_error_naming_the_field(
    gg: GreengrassBackend, directory: FakeDirectory, config: dict[str, Any], field: str
) -> None:
    _fleet(directory, 1)
    with pytest.raises(ValidationException) as refused:
        _deploy(gg, config)
    assert (
        refused.value.code == "ValidationException"
        and refused.value.fields["reason"] == "FIELD_VALIDATION_FAILED"
    )
    [named] = refused.value.fields["fields"]
    assert named["name"].startswith("iotJobConfiguration.") and named["name"].endswith(field)
    assert "failed to satisfy constraint" in refused.value.message and not gg.deployments


def test_the_minute_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_EDGE_LOCAL_MINUTE_S", "0.25")
    assert env_minute_s() == 0.25
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv("MLOPS_EDGE_LOCAL_MINUTE_S", bad)
        assert env_minute_s() == 60.0


def test_the_backend_has_every_member_the_job_rules_name(gg: GreengrassBackend) -> None:
    """jobrules and iamfacts name the backend by the ``JobState`` protocol, which nothing checks
    at run time: a member renamed on one side only must fail here, not in the ticker."""
    declared = set(JobState.__annotations__) | {
        name for name, value in vars(JobState).items() if callable(value) and not name.startswith("_")
    }
    assert declared == {"lock", "deployments", "executions", "clock", "minute_s", "save", "reconcile"}
    missing = sorted(name for name in declared if not hasattr(gg, name))
    assert missing == []
    assert all(callable(getattr(gg, name)) for name in ("clock", "minute_s", "save", "reconcile"))
