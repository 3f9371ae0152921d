"""``python -m edge_runtime.core``: start a simulated core device, without the operator's CLI.

The same options as ``mlops-edge device run`` and the same :func:`~.runner.run_core`; what differs
is what the process carries. A device is the edge runtime alone, as a nucleus is started by its own
launcher and not by the operator's tool: ``mlops-edge device run`` brings click and rich into every
core (~9 MB of each core's memory, measured for issue 12, where 100 devices share one machine), so
``mlops_edge.environment.fleet`` starts devices through this entry point. Bad options exit 2 with
argparse's message; a missing certificate, key or host exits 2 with the reason, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .core import CoreSettings
from .identity import Identity
from .runner import run_core


def parser() -> argparse.ArgumentParser:
    """The options of ``mlops-edge device run`` (with the same environment fallbacks)."""
    p = argparse.ArgumentParser(prog="python -m edge_runtime.core", description=__doc__.splitlines()[0])
    p.add_argument("--thing", required=True, help="IoT thing name of the core device.")
    p.add_argument("--root", type=Path, required=True, help="Core root (state, packages, logs).")
    p.add_argument("--cert", help="Device certificate (PEM) [$MLOPS_EDGE_DEVICE_CERT].")
    p.add_argument("--key", help="Device private key (PEM) [$MLOPS_EDGE_DEVICE_KEY].")
    p.add_argument(
        "--ca", help="CA bundle of the MQTT endpoint [$MLOPS_EDGE_DEVICE_CA, $MLOPS_EDGE_MQTT_CA]."
    )
    p.add_argument(
        "--mqtt-host", help="IoT data endpoint [$MLOPS_EDGE_DEVICE_MQTT_HOST, $MLOPS_EDGE_MQTT_HOST]."
    )
    p.add_argument("--mqtt-port", type=int, help="[$MLOPS_EDGE_DEVICE_MQTT_PORT, $MLOPS_EDGE_MQTT_PORT]")
    p.add_argument(
        "--mqtt-flow-control", choices=["aws-iot-core", "none"], help="[$MLOPS_EDGE_MQTT_FLOW_CONTROL]"
    )
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    p.add_argument("--heartbeat", type=float, default=30.0, help="Fleet-status period (s).")
    p.add_argument("--deployment-timeout", type=float, default=300.0, help="Wait for healthy (s).")
    p.add_argument("--settle", type=float, default=2.0, help="RUNNING must hold this long (s).")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        identity = Identity.from_env(
            args.thing,
            cert_path=args.cert,
            key_path=args.key,
            ca_path=args.ca,
            host=args.mqtt_host,
            port=args.mqtt_port,
            flow_control=args.mqtt_flow_control,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.root.mkdir(parents=True, exist_ok=True)
    settings = CoreSettings(
        root=args.root.resolve(),
        identity=identity,
        region=args.region,
        heartbeat_s=args.heartbeat,
        deployment_timeout_s=args.deployment_timeout,
        settle_s=args.settle,
    )
    return run_core(settings)


if __name__ == "__main__":
    sys.exit(main())
