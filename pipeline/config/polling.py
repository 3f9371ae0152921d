"""When a poll loop checks next: a back-off from ``first_interval_s`` doubling up to ``interval_s``.

A loop's settings are the execution input's ``poll.<loop>`` (``interval_s``, ``first_interval_s``,
``timeout_s``, ``max_polls``; Configure fills the defaults). The n-th wait (n = polls done so far,
from 0) is ``min(first_interval_s * 2**n, interval_s)``: a local run (``first_interval_s`` 0.25)
checks after 0.25, 0.5, 1, 1 … s, so a deployment that takes 1.6 s is seen done at ~1.8 s rather
than at 3 s with fixed 1 s waits; on AWS the default ``first_interval_s`` is ``interval_s``, a fixed
interval as before. The difference comes from the input, never from where the code runs.

Step Functions' ``SecondsPath`` takes whole seconds only, so the function that checks computes the
absolute time of the next check (:func:`next_poll_at`, RFC 3339 UTC to the millisecond) and the
Wait state waits until it (``TimestampPath``). The training loop polls SageMaker without a function
(``DescribeTrainingJob`` is a service integration), so it waits ``interval_s`` each time.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

#: Loops whose check is a function that computes the next check's time (the back-off applies).
BACKOFF_LOOPS = ("components", "deployment")


def first_interval(poll: Mapping[str, Any]) -> float:
    """The loop's first wait: ``first_interval_s``, else ``interval_s`` (a fixed interval)."""
    return float(poll.get("first_interval_s", poll["interval_s"]))


def wait_s(poll: Mapping[str, Any], polls_done: int) -> float:
    """The wait before the next check, after ``polls_done`` waits of this loop."""
    cap = float(poll["interval_s"])
    first = min(first_interval(poll), cap)
    if polls_done >= 64:  # 2**64 times any first interval is past every cap
        return cap
    return min(first * 2 ** max(0, polls_done), cap)


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 UTC with milliseconds (``2026-03-14T01:59:00.250Z``), as a Wait state takes it."""
    utc = moment.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def next_poll_at(poll: Mapping[str, Any], polls_done: int, now: datetime.datetime | None = None) -> str:
    """When the next check is due, for the loop's Wait state (``TimestampPath``)."""
    start = now if now is not None else datetime.datetime.now(datetime.UTC)
    return timestamp(start + datetime.timedelta(seconds=wait_s(poll, polls_done)))


def derived_max_polls(poll: Mapping[str, Any]) -> int:
    """Checks that fit the time budget with this back-off, plus one: ``ceil(timeout_s /
    interval_s) + 1`` for a fixed interval, a few more for a back-off's short first waits."""
    timeout, cap = float(poll["timeout_s"]), float(poll["interval_s"])
    waited, polls = 0.0, 0
    while waited < timeout and wait_s(poll, polls) < cap:  # the ramp, a handful of waits
        waited += wait_s(poll, polls)
        polls += 1
    return polls + max(0, math.ceil((timeout - waited) / cap)) + 1


def poll_section(event: Mapping[str, Any], loop: str) -> dict[str, str]:
    """``{"next_poll_at": ...}`` for a check function's result, from the state it was given
    (``config.poll.<loop>`` and ``polls.<loop>.count``, the waits done so far)."""
    poll = event["config"]["poll"][loop]
    done = int(((event.get("polls") or {}).get(loop) or {}).get("count", 0))
    return {"next_poll_at": next_poll_at(poll, done)}
