"""AWS IoT Core's limits as the core's MQTT connection applies them (see :mod:`.mqtt`).

Per connection, what a client publishes: 100 PUBLISH/s and 512 KiB/s; per message: 128 KiB of
payload, a topic of at most 256 bytes and 7 slashes. A device that publishes faster waits in a
spool of the nucleus's default size, and fails at once when that is full.
"""

from __future__ import annotations

#: AWS IoT Core's per-connection limits on what a client publishes.
IOT_CORE_PUBLISH_PER_S = 100.0
IOT_CORE_BYTES_PER_S = 512 * 1024
#: The nucleus's default spooler size (``mqtt.spooler.maxSizeInBytes``).
SPOOL_BYTES = 2_621_440
#: AWS IoT Core's limits on one message (the validation half of awscrt's AWS_IOT_CORE_DEFAULTS).
IOT_CORE_MAX_PAYLOAD_BYTES = 128 * 1024
IOT_CORE_MAX_TOPIC_BYTES = 256
IOT_CORE_MAX_TOPIC_SLASHES = 7  # not counting the 3 of a Basic Ingest prefix ($aws/rules/<rule>/)


class SpoolFull(RuntimeError):
    """The publish spool is full: the device is publishing faster than IoT Core accepts."""


class IotCoreLimitExceeded(ValueError):
    """A message IoT Core would refuse (payload over 128 KiB, topic too long or too deep)."""


def check_iot_core_limits(topic: str, payload: bytes) -> None:
    """Raise :class:`IotCoreLimitExceeded` for what AWS IoT Core would refuse to accept."""
    if len(payload) > IOT_CORE_MAX_PAYLOAD_BYTES:
        raise IotCoreLimitExceeded(
            f"publish to {topic} refused: {len(payload)} bytes, over IoT Core's message limit of "
            f"{IOT_CORE_MAX_PAYLOAD_BYTES} bytes"
        )
    if len(topic.encode()) > IOT_CORE_MAX_TOPIC_BYTES:
        raise IotCoreLimitExceeded(f"publish refused: topic longer than {IOT_CORE_MAX_TOPIC_BYTES} bytes")
    slashes = topic.count("/") - (3 if topic.lower().startswith("$aws/rules/") else 0)  # Basic Ingest
    if slashes > IOT_CORE_MAX_TOPIC_SLASHES:
        raise IotCoreLimitExceeded(
            f"publish to {topic} refused: more than {IOT_CORE_MAX_TOPIC_SLASHES} '/' in the topic"
        )
