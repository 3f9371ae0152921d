"""MQTT topic-filter matching, shared by local pub/sub, the IoT bridge and authorization.

Matching is paho-mqtt's (``topic_matches_sub``), which keeps the rule hand-written matchers tend
to miss (MQTT 3.1.1 and MQTT 5 §4.7.2): a filter starting with a wildcard never matches a topic
starting with ``$``. ``#`` or ``+/things/...`` must not reach ``$aws/things/...`` — the reserved
topics of jobs, shadows and fleet status — while ``$aws/things/+/jobs/#`` does. Authorization
relies on this: an ``accessControl`` resource of ``#`` grants the component's own topics, not the
core's.
"""

from __future__ import annotations

from paho.mqtt.client import topic_matches_sub


def matches(topic_filter: str, topic: str) -> bool:
    """True when ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest)."""
    return topic_matches_sub(topic_filter, topic)


def has_wildcard(topic: str) -> bool:
    """True for a filter with ``+`` or ``#`` levels."""
    return any(part in ("+", "#") for part in topic.split("/"))
