"""The job-client fleet's choices that need no broker: names, which devices fail, bad arguments."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mlops_edge.environment.job_clients import JobClientFleet, job_client_names, spread_failures


def test_names_sort_in_number_order() -> None:
    names = job_client_names(1000)
    assert names[0] == "mlops-edge-jobclient-0001" and names[-1] == "mlops-edge-jobclient-1000"
    assert sorted(names) == names
    assert job_client_names(3, "x-") == ["x-0001", "x-0002", "x-0003"]


@pytest.mark.parametrize(
    ("count", "share", "failing"), [(100, 0.1, 10), (1000, 0.2, 200), (30, 0.05, 2), (10, 0.0, 0)]
)
def test_a_failure_share_is_spread_evenly(count: int, share: float, failing: int) -> None:
    names = job_client_names(count)
    chosen = spread_failures(names, share)
    assert len(chosen) == failing
    # evenly: every window of 1/share devices (in rollout order) holds one failing device
    if failing:
        step = count // failing
        for start in range(0, step * failing, step):
            assert len(chosen & set(names[start : start + step])) == 1


def test_the_whole_fleet_can_fail() -> None:
    names = job_client_names(7)
    assert spread_failures(names, 1.0) == set(names)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        spread_failures(job_client_names(10), share)


def _fleet(**kwargs: object) -> JobClientFleet:
    cloud = SimpleNamespace(mqtt=SimpleNamespace(host="127.0.0.1", port=1))
    options: dict = {"root": Path("/nonexistent"), "thing_group": "g", "names": job_client_names(3), **kwargs}
    fleet = JobClientFleet(cloud, **options)
    fleet.timers.stop()
    return fleet


def test_failing_and_silent_devices_must_be_in_the_fleet() -> None:
    with pytest.raises(ValueError, match="not job clients of this fleet: ghost"):
        _fleet(failing=["ghost"])
    with pytest.raises(ValueError, match="unique"):
        _fleet(names=["a", "a"])
    with pytest.raises(ValueError, match="batch"):
        _fleet(batch=0)
    fleet = _fleet(failing=["mlops-edge-jobclient-0002"], failure_share=1 / 3)
    assert fleet.failing == {"mlops-edge-jobclient-0001", "mlops-edge-jobclient-0002"}
