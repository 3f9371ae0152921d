"""MQTT topic-filter matching, shared by local pub/sub, the IoT bridge and authorization."""

from __future__ import annotations


def matches(topic_filter: str, topic: str) -> bool:
    """True when ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest)."""
    if topic_filter == topic:
        return True
    f_parts = topic_filter.split("/")
    t_parts = topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return i < len(t_parts) or i == len(t_parts)
        if i >= len(t_parts):
            return False
        if part != "+" and part != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


def has_wildcard(topic: str) -> bool:
    """True for a filter with ``+`` or ``#`` levels."""
    return any(part in ("+", "#") for part in topic.split("/"))
