"""Wait states wait as long as the definition says, measured from the execution's own history.

moto 5.2.5 truncated a timestamp's fraction and the time left to whole seconds, so a wait until
0.2 s from now did not wait at all and one until 1.3 s from now ended early
(local_cloud/services/stepfunctions/waits.py). The bounds are loose on the slow side (a loaded
2-core machine) and exact on the early side: a wait never ends before its timestamp.
"""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from local_cloud.services.stepfunctions import waits
from tests.integration.local_cloud.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("states_role_arn")]
ROLE = "arn:aws:iam::123456789012:role/sfn"
MS = datetime.timedelta(milliseconds=1)  # the history's timestamps are to the millisecond


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_parse_timestamp_keeps_the_fraction_and_refuses_what_aws_refuses() -> None:
    parsed = waits.parse_timestamp("2026-03-14T01:59:00.25Z")
    assert parsed == datetime.datetime(2026, 3, 14, 1, 59, 0, 250000, tzinfo=datetime.UTC)
    assert waits.parse_timestamp("2026-03-14T01:59:00Z") == parsed - datetime.timedelta(seconds=0.25)
    for bad in ("2026-03-14 01:59:00Z", "2026-03-14T01:59:00", "2026-13-14T01:59:00Z", 5, "x"):
        assert waits.parse_timestamp(bad) is None  # type: ignore[arg-type]
    assert waits.seconds_until(parsed) == 0.0  # a past time: no wait


def test_waits_end_at_their_timestamp_and_after_their_seconds(local_cloud) -> None:  # type: ignore[no-untyped-def]
    definition = {
        "StartAt": "Soon",
        "States": {
            "Soon": {"Type": "Wait", "TimestampPath": "$.soon", "Next": "Later"},
            "Later": {"Type": "Wait", "TimestampPath": "$.later", "Next": "OneSecond"},
            "OneSecond": {"Type": "Wait", "Seconds": 1, "End": True},
        },
    }
    sfn = local_cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"waits-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    now = datetime.datetime.now(datetime.UTC)
    soon, later = now + datetime.timedelta(seconds=0.2), now + datetime.timedelta(seconds=1.3)
    execution = sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"soon": _iso(soon), "later": _iso(later)})
    )["executionArn"]
    done = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        timeout=60,
        interval=0.1,
    )
    assert done["status"] == "SUCCEEDED"
    events = sfn.get_execution_history(executionArn=execution)["events"]
    entered = {
        e["stateEnteredEventDetails"]["name"]: e["timestamp"]
        for e in events
        if "stateEnteredEventDetails" in e
    }
    exited = {
        e["stateExitedEventDetails"]["name"]: e["timestamp"] for e in events if "stateExitedEventDetails" in e
    }
    for name, target in (("Soon", soon), ("Later", later)):
        assert exited[name] >= target - MS, f"{name} ended before its timestamp"
        # waited to the timestamp, not to the next whole second: never 1 s past it
        assert exited[name] - max(target, entered[name]) < datetime.timedelta(seconds=1)
    one = exited["OneSecond"] - entered["OneSecond"]
    assert datetime.timedelta(seconds=1) - MS <= one < datetime.timedelta(seconds=1.9)


def test_the_wait_patch_is_pinned_to_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    waits.verify()  # this moto is the one the patch was written against
    key = next(iter(waits.FINGERPRINTS))
    monkeypatch.setitem(waits.FINGERPRINTS, key, ("a line moto never had",))
    with pytest.raises(waits.MotoInternalsChanged, match="a line moto never had"):
        waits.verify()
