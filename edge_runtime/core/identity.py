"""The device identity and where its IoT Core endpoint is: thing name, certificate, key, CA."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    """What a core needs to connect to IoT Core as its thing (mTLS)."""

    thing_name: str
    cert_path: Path
    key_path: Path
    ca_path: Path | None
    host: str
    port: int = 8883
    #: "aws-iot-core": what the core publishes is held to IoT Core's per-connection limits (100
    #: publishes/s, 512 KiB/s; ``mqtt.PublishThrottle``); "none": no client-side throttle, for a
    #: broker without those limits.
    flow_control: str = "aws-iot-core"

    @classmethod
    def from_env(cls, thing_name: str, **overrides: object) -> Identity:
        """Options win; then ``MLOPS_EDGE_DEVICE_*`` / ``MLOPS_EDGE_MQTT_*`` variables.

        On AWS the host is the account's ``iot:Data-ATS`` endpoint and the CA Amazon's root CA;
        locally they are the embedded broker's. Same code, different values.
        """
        env = os.environ

        def pick(key: str, *names: str) -> str | None:
            value = overrides.get(key)
            if value not in (None, ""):
                return str(value)
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        cert = pick("cert_path", "MLOPS_EDGE_DEVICE_CERT")
        key = pick("key_path", "MLOPS_EDGE_DEVICE_KEY")
        host = pick("host", "MLOPS_EDGE_DEVICE_MQTT_HOST", "MLOPS_EDGE_MQTT_HOST")
        if not (cert and key and host):
            raise ValueError("device certificate, key and MQTT host are required (options or environment)")
        ca = pick("ca_path", "MLOPS_EDGE_DEVICE_CA", "MLOPS_EDGE_MQTT_CA")
        port = pick("port", "MLOPS_EDGE_DEVICE_MQTT_PORT", "MLOPS_EDGE_MQTT_PORT") or "8883"
        flow = pick("flow_control", "MLOPS_EDGE_MQTT_FLOW_CONTROL") or "aws-iot-core"
        if flow not in ("aws-iot-core", "none"):
            raise ValueError(f"MQTT flow control must be aws-iot-core or none, got {flow!r}")
        return cls(thing_name, Path(cert), Path(key), Path(ca) if ca else None, host, int(port), flow)
