"""``mlops-edge device run``: a simulated Greengrass core device in the foreground."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click


@click.group()
def device() -> None:
    """Run a simulated Greengrass core device."""


@device.command("run")
@click.option("--thing", required=True, help="IoT thing name of the core device.")
@click.option(
    "--root", type=click.Path(path_type=Path), required=True, help="Core root (state, packages, logs)."
)
@click.option("--cert", envvar="MLOPS_EDGE_DEVICE_CERT", help="Device certificate (PEM).")
@click.option("--key", envvar="MLOPS_EDGE_DEVICE_KEY", help="Device private key (PEM).")
@click.option(
    "--ca", envvar="MLOPS_EDGE_DEVICE_CA", help="CA bundle of the MQTT endpoint [$MLOPS_EDGE_MQTT_CA]."
)
@click.option(
    "--mqtt-host", envvar="MLOPS_EDGE_DEVICE_MQTT_HOST", help="IoT data endpoint [$MLOPS_EDGE_MQTT_HOST]."
)
@click.option("--mqtt-port", type=int, envvar="MLOPS_EDGE_DEVICE_MQTT_PORT", help="[$MLOPS_EDGE_MQTT_PORT]")
@click.option(
    "--mqtt-flow-control",
    type=click.Choice(["aws-iot-core", "none"]),
    envvar="MLOPS_EDGE_MQTT_FLOW_CONTROL",
    help="Client-side throttle to IoT Core's per-connection limits (default aws-iot-core).",
)
@click.option(
    "--region",
    help="AWS Region of the core (default: `mlops-edge --region`, $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1).",
)
@click.option("--heartbeat", type=float, default=30.0, show_default=True, help="Fleet-status period (s).")
@click.option(
    "--deployment-timeout", type=float, default=300.0, show_default=True, help="Wait for healthy (s)."
)
@click.option("--settle", type=float, default=2.0, show_default=True, help="RUNNING must hold this long (s).")
@click.option("--log-level", default="INFO", show_default=True)
def run(
    thing: str,
    root: Path,
    cert: str | None,
    key: str | None,
    ca: str | None,
    mqtt_host: str | None,
    mqtt_port: int | None,
    mqtt_flow_control: str | None,
    region: str | None,
    heartbeat: float,
    deployment_timeout: float,
    settle: float,
    log_level: str,
) -> None:
    """Run a core device until SIGTERM/SIGINT; deployments arrive over MQTT."""
    from edge_runtime.core import CoreSettings, Identity
    from edge_runtime.core.runner import run_core
    from mlops_edge.commands.common import UserError

    logging.basicConfig(
        level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        identity = Identity.from_env(
            thing,
            cert_path=cert,
            key_path=key,
            ca_path=ca,
            host=mqtt_host,
            port=mqtt_port,
            flow_control=mqtt_flow_control,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    root.mkdir(parents=True, exist_ok=True)
    settings = CoreSettings(
        root=root.resolve(),
        identity=identity,
        # not an envvar= option: AWS_REGION would then beat `mlops-edge --region` (click puts the
        # environment above default_map, which carries the global option here)
        region=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        heartbeat_s=heartbeat,
        deployment_timeout_s=deployment_timeout,
        settle_s=settle,
    )
    sys.exit(run_core(settings))
