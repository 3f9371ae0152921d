"""IoT Jobs' rollout, abort and timeout rules, on the local cloud's one scaled clock.

A Greengrass deployment is an IoT job, and its ``iotJobConfiguration`` carries three of CreateJob's
settings, applied here as IoT Jobs documents them ("Job rollout, scheduling and abort
configurations"):

- ``jobExecutionsRolloutConfig``: ``maximumPerMinute`` things notified per minute at most, or an
  ``exponentialRate`` that starts at ``baseRatePerMinute`` and is multiplied by
  ``incrementFactor`` each time ``rateIncreaseCriteria`` is met again (every
  ``numberOfNotifiedThings`` more things notified, or ``numberOfSucceededThings`` more succeeded),
  never above 1,000 a minute. Both given: the exponential rate, capped by ``maximumPerMinute``.
  Minutes are counted from the job's creation; a rate change takes effect at the next minute, so
  each minute's count is whole. An execution not yet released is QUEUED but unknown to its device
  (no notify-next, not in GetPendingJobExecutions). Without a rollout config every execution is
  released at once, as before.
- ``abortConfig.criteriaList``: a criterion is met once at least ``minNumberOfExecutedThings``
  executions ended (SUCCEEDED, FAILED, REJECTED or TIMED_OUT) and the share of them of its
  ``failureType`` (ALL: the three failures) is more than ``thresholdPercentage``.
- ``timeoutConfig.inProgressTimeoutInMinutes``: see ``executions.ExecutionBook.expire``.

One knob sets the length of the local cloud's "minute" for all three: ``MLOPS_EDGE_LOCAL_MINUTE_S``
in the endpoint's environment (default 60 seconds), which the admin settings route
(``job_timeout_minute_s``, ``LocalCloud.set_job_timeout_minute``) overrides while it runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from local_cloud.services.greengrassv2.executions import ExecutionStatus

MINUTE_ENV = "MLOPS_EDGE_LOCAL_MINUTE_S"
DEFAULT_MINUTE_S = 60.0
#: IoT Jobs' ceiling on any rollout rate (things notified per minute)
MAX_RATE_PER_MINUTE = 1000
_MAX_INCREASES = 200  # 1.1 ** 200 is far above the ceiling; keeps the power finite

_S = ExecutionStatus
#: executions that count as "executed" for abort criteria
EXECUTED = frozenset({_S.SUCCEEDED, _S.FAILED, _S.REJECTED, _S.TIMED_OUT})
FAILURE_TYPES: dict[str, frozenset[ExecutionStatus]] = {
    "FAILED": frozenset({_S.FAILED}),
    "REJECTED": frozenset({_S.REJECTED}),
    "TIMED_OUT": frozenset({_S.TIMED_OUT}),
    "ALL": frozenset({_S.FAILED, _S.REJECTED, _S.TIMED_OUT}),
}


def env_minute_s() -> float:
    """The length of a local "minute" in seconds from ``MLOPS_EDGE_LOCAL_MINUTE_S`` (default 60).

    A value that is not a positive number is ignored (the default applies), so a typo cannot stop
    every rollout and timeout.
    """
    raw = os.environ.get(MINUTE_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_MINUTE_S
    except ValueError:
        return DEFAULT_MINUTE_S
    return value if math.isfinite(value) and value > 0 else DEFAULT_MINUTE_S


@dataclass
class RolloutState:
    """How far one job's rollout went: the current minute, its rate and what was released."""

    started: float
    maximum_per_minute: int | None = None
    base_rate: int | None = None
    increment_factor: float = 1.0
    #: ``numberOfNotifiedThings`` or ``numberOfSucceededThings``; None: the rate never grows
    criterion: str | None = None
    every: int = 0
    window: int = -1
    rate: int = 0
    in_window: int = 0
    notified: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, started: float) -> RolloutState | None:
        """The state of a new job; None when its rollout is not limited (all released at once)."""
        rollout = dict((config or {}).get("jobExecutionsRolloutConfig") or {})
        maximum = rollout.get("maximumPerMinute")
        exponential = rollout.get("exponentialRate") or None
        if maximum is None and exponential is None:
            return None
        state = cls(started=started, maximum_per_minute=int(maximum) if maximum is not None else None)
        if exponential is not None:
            state.base_rate = int(exponential["baseRatePerMinute"])
            state.increment_factor = float(exponential["incrementFactor"])
            criteria = exponential.get("rateIncreaseCriteria") or {}
            for name in ("numberOfNotifiedThings", "numberOfSucceededThings"):
                if criteria.get(name):
                    state.criterion, state.every = name, int(criteria[name])
                    break
        return state

    def rate_for(self, increases: int) -> int:
        """Things per minute after ``increases`` rate increases."""
        if self.base_rate is None:
            rate = self.maximum_per_minute or MAX_RATE_PER_MINUTE
        else:
            grown = self.base_rate * self.increment_factor ** min(increases, _MAX_INCREASES)
            rate = int(grown + 1e-9)  # 1.1 * 10 is 11.000000000000002, and 3 * 1.1 ** 2 is 3.63
            if self.maximum_per_minute is not None:
                rate = min(rate, self.maximum_per_minute)
        return max(1, min(rate, MAX_RATE_PER_MINUTE))

    def increases(self, succeeded: int) -> int:
        """How many times the rate-increase criterion has been met so far."""
        if self.criterion is None or self.every <= 0:
            return 0
        progress = self.notified if self.criterion == "numberOfNotifiedThings" else succeeded
        return progress // self.every

    def allowance(self, now: float, minute_s: float, succeeded: int) -> int:
        """How many more things may be notified now, in the current minute."""
        window = int((now - self.started) // minute_s) if minute_s > 0 else 0
        if window != self.window:
            self.window = max(window, self.window)
            self.in_window = 0
            self.rate = self.rate_for(self.increases(succeeded))
        return max(0, self.rate - self.in_window)

    def released(self, count: int) -> None:
        self.in_window += count
        self.notified += count

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: Mapping[str, Any] | None) -> RolloutState | None:
        return cls(**data) if data else None


def met_criterion(
    criteria: list[Mapping[str, Any]], counts: Mapping[ExecutionStatus, int]
) -> tuple[Mapping[str, Any], int, int] | None:
    """The first abort criterion met by a job's execution counts, with the executed and failed
    numbers that met it; None when the job goes on."""
    executed = sum(counts.get(status, 0) for status in EXECUTED)
    for criterion in criteria:
        if executed < int(criterion.get("minNumberOfExecutedThings", 1)) or executed == 0:
            continue
        kinds = FAILURE_TYPES.get(str(criterion.get("failureType")), frozenset())
        failed = sum(counts.get(status, 0) for status in kinds)
        if failed * 100.0 / executed > float(criterion.get("thresholdPercentage", 100)):
            return criterion, executed, failed
    return None


def abort_comment(criterion: Mapping[str, Any], executed: int, failed: int) -> str:
    """Why a job was aborted, in words (DescribeJob's ``comment``, each execution's reason)."""
    return (
        f"abortConfig met: {failed} of {executed} executed things {criterion.get('failureType')} "
        f"({failed * 100.0 / executed:.1f}% > {criterion.get('thresholdPercentage')}%, "
        f"minNumberOfExecutedThings {criterion.get('minNumberOfExecutedThings')})"
    )
