"""Embedded local cloud: one loopback endpoint that speaks AWS (moto + what moto lacks) and a
mosquitto MQTT broker with per-device mTLS identities. Knows nothing of ML, Lambdas or devices."""

from local_cloud.api import (
    ClientIdentity,
    DeviceIdentity,
    LocalCloud,
    LocalCloudError,
    MqttEndpoint,
    PortInUse,
    port_free,
)

__all__ = [
    "ClientIdentity",
    "DeviceIdentity",
    "LocalCloud",
    "LocalCloudError",
    "MqttEndpoint",
    "PortInUse",
    "port_free",
]
