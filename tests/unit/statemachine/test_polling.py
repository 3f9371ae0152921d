"""The poll loops' back-off (pipeline/config/polling.py): the schedule, the times the check functions
hand to the Wait states, the derived safety bound, what validation refuses, and the local run's input.
"""

from __future__ import annotations

import datetime
import math

import pytest

from local_cloud.services.stepfunctions.waits import parse_timestamp
from pipeline.config import schema
from pipeline.config.polling import derived_max_polls, next_poll_at, poll_section, timestamp, wait_s
from pipeline.config.validation import InvalidInput, validate

LOCAL = {"interval_s": 1, "first_interval_s": 0.25, "timeout_s": 300}
NOW = datetime.datetime(2026, 3, 14, 1, 59, 59, 900000, tzinfo=datetime.UTC)


def test_waits_double_from_the_first_up_to_the_interval() -> None:
    assert [wait_s(LOCAL, n) for n in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    aws = {"interval_s": 30, "first_interval_s": 2, "timeout_s": 600}
    assert [wait_s(aws, n) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    assert wait_s(aws, 10_000) == 30  # no overflow however long the loop ran


def test_without_a_first_interval_the_interval_is_fixed() -> None:
    fixed = {"interval_s": 10, "timeout_s": 600}
    assert {wait_s(fixed, n) for n in range(10)} == {10.0}
    assert derived_max_polls(fixed) == math.ceil(600 / 10) + 1  # as before the back-off
    # a first interval above the cap is capped (validation refuses it; the schedule never exceeds)
    assert wait_s({"interval_s": 1, "first_interval_s": 5}, 0) == 1.0


def test_the_derived_bound_covers_the_budget_with_the_ramp() -> None:
    polls = derived_max_polls(LOCAL)
    assert sum(wait_s(LOCAL, n) for n in range(polls - 1)) >= LOCAL["timeout_s"]
    assert sum(wait_s(LOCAL, n) for n in range(polls - 3)) < LOCAL["timeout_s"]  # and not far more


def test_next_poll_at_is_a_wait_state_timestamp_to_the_millisecond() -> None:
    text = next_poll_at(LOCAL, 0, now=NOW)
    assert text == "2026-03-14T02:00:00.150Z"  # the carry into the next second and minute
    assert parse_timestamp(text) == NOW + datetime.timedelta(seconds=0.25)
    assert next_poll_at(LOCAL, 3, now=NOW) == "2026-03-14T02:00:00.900Z"
    later = datetime.datetime(2026, 3, 14, 3, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert timestamp(later) == "2026-03-14T01:00:00.000Z"  # always UTC, whatever zone it is given


def test_poll_section_reads_the_state_a_check_function_is_given() -> None:
    event = {"config": {"poll": {"deployment": LOCAL}}, "polls": {"deployment": {"count": 2}}}
    before = datetime.datetime.now(datetime.UTC)
    due = parse_timestamp(poll_section(event, "deployment")["next_poll_at"])
    assert due is not None
    assert before + datetime.timedelta(seconds=0.99) <= due <= before + datetime.timedelta(seconds=3)
    fresh = {"config": {"poll": {"deployment": LOCAL}}}  # right after Deploy: no wait done yet
    due = parse_timestamp(poll_section(fresh, "deployment")["next_poll_at"])
    assert due is not None and due <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=0.3)


@pytest.mark.parametrize(
    ("poll", "problem"),
    [
        ({"training": {"interval_s": 1, "first_interval_s": 0.25}}, "the training loop waits interval_s"),
        ({"deployment": {"interval_s": 1, "first_interval_s": 2}}, "longer than interval_s 1"),
        ({"components": {"interval_s": 1, "first_interval_s": 0.01}}, "less than the minimum of 0.1"),
        ({"deployment": {"interval_s": 1, "first_interval_s": "0.5"}}, "is not of type 'number'"),
    ],
)
def test_validation_refuses_a_back_off_it_cannot_run(poll: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        validate({"poll": poll}, schema())


def test_a_local_run_backs_off_from_a_quarter_second() -> None:
    from mlops_edge.environment.run_options import RunOptions, execution_input

    document = execution_input(RunOptions(), None, python="python3")
    validate(document, schema())
    poll = document["poll"]
    assert poll["components"]["first_interval_s"] == poll["deployment"]["first_interval_s"] == 0.25
    assert "first_interval_s" not in poll["training"]
    assert {p["interval_s"] for p in poll.values()} == {1}
