"""MQTT topic-filter matching, shared by local pub/sub, the IoT bridge and authorization.

Matching is paho-mqtt's (its ``MQTTMatcher``, what ``topic_matches_sub`` uses), which keeps the rule hand-written matchers tend
to miss (MQTT 3.1.1 and MQTT 5 §4.7.2): a filter starting with a wildcard never matches a topic
starting with ``$``. ``#`` or ``+/things/...`` must not reach ``$aws/things/...`` — the reserved
topics of jobs, shadows and fleet status — while ``$aws/things/+/jobs/#`` does. Authorization
relies on this: an ``accessControl`` resource of ``#`` grants the component's own topics, not the
core's.

The matcher is imported from ``paho.mqtt.matcher`` rather than ``paho.mqtt.client``: the same rule,
without loading the whole client (about 8 MB of every simulated core's memory, issue 12).
"""

from __future__ import annotations

from functools import lru_cache

from paho.mqtt.matcher import MQTTMatcher

#: (filter, topic) pairs remembered: a core sees a few dozen filters and topics, and matching one
#: costs ~2 us, paid per subscriber on every message before (issue 15 §2).
MATCHES_CACHED = 4096


@lru_cache(maxsize=MATCHES_CACHED)
def matches(topic_filter: str, topic: str) -> bool:
    """True when ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest)."""
    matcher = MQTTMatcher()
    matcher[topic_filter] = True
    return next(matcher.iter_match(topic), None) is not None


def has_wildcard(topic: str) -> bool:
    """True for a filter with ``+`` or ``#`` levels."""
    return any(part in ("+", "#") for part in topic.split("/"))
