"""Topic-filter matching, above all the ``$`` rule authorization depends on (MQTT §4.7.2)."""

from __future__ import annotations

import pytest

from edge_runtime.core.ipc import Authorizer
from edge_runtime.core.ipc.exceptions import UnauthorizedError
from edge_runtime.core.topics import has_wildcard, matches

JOBS = "$aws/things/x/jobs/notify-next"

CASES = [
    # filter, topic, matches
    ("edge/x/out", "edge/x/out", True),
    ("edge/x/out", "edge/x/in", False),
    ("edge/+/out", "edge/x/out", True),
    ("edge/+/out", "edge/x/y/out", False),
    ("edge/#", "edge/x/y/out", True),
    ("edge/#", "edge", True),  # '#' also matches the parent level
    ("#", "edge/x", True),
    ("+/+", "/x", True),  # an empty level is a level
    ("+", "edge/x", False),
    # wildcards at the first level never match a topic starting with '$'
    ("#", JOBS, False),
    ("+/things/x/jobs/notify-next", JOBS, False),
    ("+/#", JOBS, False),
    ("+", "$SYS", False),
    # ... but do after a literal '$' level
    ("$aws/things/+/jobs/#", JOBS, True),
    ("$aws/#", JOBS, True),
    ("$aws/things/x/jobs/+", JOBS, True),
    (JOBS, JOBS, True),
    ("$aws/things/y/jobs/#", JOBS, False),
]


@pytest.mark.parametrize(("topic_filter", "topic", "expected"), CASES)
def test_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("topic", "expected"),
    [("a/+/b", True), ("a/#", True), ("#", True), ("a/b", False), ("a+/b#", False), ("$aws/x", False)],
)
def test_has_wildcard(topic: str, expected: bool) -> None:
    assert has_wildcard(topic) is expected


def _authorizer(resources: list[str]) -> Authorizer:
    policy = {"operations": ["aws.greengrass#SubscribeToIoTCore"], "resources": resources}
    acl = {"aws.greengrass.ipc.mqttproxy": {"p": policy}}
    return Authorizer(lambda _component: acl, "x")


@pytest.mark.parametrize(
    ("resource", "granted"),
    [
        ("#", "edge/x/in"),
        ("+/#", "edge/x/in"),
        ("+/things/x/jobs/notify-next", "aws/things/x/jobs/notify-next"),
    ],
)
def test_a_wildcard_grant_does_not_reach_reserved_topics(resource: str, granted: str) -> None:
    auth = _authorizer([resource])
    auth.check("c", "aws.greengrass.ipc.mqttproxy", "aws.greengrass#SubscribeToIoTCore", granted)
    with pytest.raises(UnauthorizedError):
        auth.check("c", "aws.greengrass.ipc.mqttproxy", "aws.greengrass#SubscribeToIoTCore", JOBS)


def test_a_grant_under_dollar_aws_reaches_its_topics() -> None:
    auth = _authorizer(["$aws/things/{iot:thingName}/jobs/#"])
    auth.check("c", "aws.greengrass.ipc.mqttproxy", "aws.greengrass#SubscribeToIoTCore", JOBS)
    with pytest.raises(UnauthorizedError):
        auth.check(
            "c", "aws.greengrass.ipc.mqttproxy", "aws.greengrass#SubscribeToIoTCore", "$aws/things/y/jobs/x"
        )
