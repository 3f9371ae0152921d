"""The device round trip (issue 15 §2), three ways, on one device as ``mlops-edge run`` starts it.

One local cloud (broker, S3, greengrassv2), one ``mlops-edge device run`` process started as
``mlops-edge run`` starts its devices (``mlops_edge.environment.fleet``, no options: IoT Core's flow
control on, so what the device publishes is held to 100 publishes/s and 512 KiB/s), the model and
inference components published and deployed through the greengrassv2 API. Then, each selectable
with ``--modes`` (default all three, in this order):

- ``mqtt``: a client publishes single-row requests over MQTT (mTLS, QoS 1) at ``--rate`` (100/s,
  the device's publish limit) and times each result: p50/p99/lost. The load client itself is not
  throttled (on AWS, more than 100 requests/s to one device need more than one connection);
- ``local``: a second component deployed on the device (its own recipe and ``accessControl``,
  awsiotsdk's IPC client, like the reference Greengrass sample's consumer) sends requests over
  local pub/sub at ``--local-rate`` (2,000/s) for ``--local-duration`` (60 s): p50/p99/lost;
- ``batch``: 256-row requests over MQTT: rows answered per second.

Each mode also reports the CPU milliseconds one request costs each process (broker, core,
inference component, load client), from psutil. Prints a table and writes JSON (``--json``,
default ``bench/results/device_roundtrip.json``); ``--quick`` shortens every mode (a smoke run).
``--device-flow-control none`` measures a device without IoT Core's limits; ``--gc-probe`` (local)
each process's collector pauses (:mod:`bench.roundtrip_modes.gc_probe`).

Goals: MQTT p50 <= 1 ms and p99 <= 5 ms at 100 req/s, 0 lost; local pub/sub >= 2,000 req/s for
60 s, 0 lost, p99 <= 10 ms; 256-row batches >= 20,000 rows/s (the public reference sample: about
25 ms a request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# bench/ holds local_cloud.py (another benchmark): it must not shadow the local_cloud package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench.roundtrip_modes.cpu import Processes, idle_cpu, loadavg, per_request  # noqa: E402 - after the path fix
from bench.roundtrip_modes.requester import _Requester  # noqa: E402 - bench/reliability.py uses it from here
from edge_runtime.inference.stats import percentile  # noqa: E402

TARGETS = {"p50_ms": 1.0, "p99_ms": 5.0, "lost": 0}
RESULTS = _HERE / "results" / "device_roundtrip.json"
#: Idle seconds for the device's publish budget (a second of burst) to refill before measuring.
REFILL_S = 2.5
MODEL = "com.example.bench.Model"
INFERENCE = "com.example.bench.Inference"
#: How `mlops-edge run` configures its devices' MQTT connection (fleet.py passes no options).
RUN_FLOW_CONTROL = "aws-iot-core"
#: The pipeline identity may connect with client ids that start with this (the broker enforces it).
CLIENT_PREFIX = "mlops-edge-tool-"


def _publish(gg: Any, s3: Any, bucket: str, recipe: dict, data: bytes) -> None:
    """Upload the artifact and CreateComponentVersion, then wait for DEPLOYABLE."""
    art = recipe["Manifests"][0]["Artifacts"][0]
    s3.put_object(Bucket=bucket, Key=art["URI"].split(f"s3://{bucket}/", 1)[1], Body=data)
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    deadline = time.monotonic() + 60
    while gg.describe_component(arn=arn)["status"]["componentState"] != "DEPLOYABLE":
        if time.monotonic() > deadline:
            raise SystemExit(f"{arn} never became DEPLOYABLE")
        time.sleep(0.2)


def _model(workdir: Path) -> tuple[Path, list[list[float]]]:
    from pipeline.ml.datasets import write_demo
    from pipeline.ml.export import export_model
    from pipeline.training import train as train_py

    data = write_demo("diabetes", workdir / "data")
    hps = train_py._typed({**train_py.DEFAULTS, "task": data.task, "num_round": 300, "nthread": 1})
    train_py.train(hps, str(data.train_csv), str(data.validation_csv), str(workdir / "train"))
    out = workdir / "onnx"
    export_model(workdir / "train", data.validation_csv, out)
    manifest = json.loads((out / "model.json").read_text())
    manifest["model_version"] = "1.0.1"
    (out / "model.json").write_text(json.dumps(manifest))
    return out, json.loads((out / "golden.json").read_text())["rows"]


def _percentile(values: list[float], q: float) -> float:
    """The project's nearest-rank percentile (as telemetry and VerifyOnDevice report it); NaN if empty."""
    value = percentile(values, q)
    return float("nan") if value is None else value


@dataclass
class Setup:
    """A deployed device and an unthrottled awscrt client on the pipeline identity."""

    cloud: Any
    client: Any
    thing: str
    rows: list[list[float]]
    device: Any
    flow_control: str
    model_dir: Path
    workdir: Path
    bucket: str
    components: dict[str, Any]  # the deployment's components (model and inference)
    group_arn: str
    inference_name: str = INFERENCE

    @property
    def broker_pid(self) -> int | None:
        return self.cloud.info.get("mosquitto_pid")

    def deploy(self, components: dict[str, Any], name: str) -> str:
        """A deployment of ``components`` to the device's thing group; returns its id."""
        gg = self.cloud.client("greengrassv2")
        return gg.create_deployment(targetArn=self.group_arn, deploymentName=name, components=components)[
            "deploymentId"
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "device_flow_control": self.flow_control,
            "configured_as_mlops_edge_run": self.flow_control == RUN_FLOW_CONTROL,
            "device_publish_limit_per_s": 100 if self.flow_control == RUN_FLOW_CONTROL else None,
            "load_client_flow_control": "none",
        }


@contextlib.contextmanager
def deployed_device(
    workdir: Path, *, flow_control: str = RUN_FLOW_CONTROL, telemetry_s: float = 5.0, py: str = sys.executable
) -> Iterator[Setup]:
    """Local cloud + one ``mlops-edge device run`` process (inference run by ``py``), via greengrassv2."""
    from components import build
    from edge_runtime.core.identity import Identity
    from edge_runtime.core.mqtt import IotConnection
    from local_cloud import LocalCloud
    from mlops_edge.environment.fleet import start_device, stop_device

    model_dir, rows = _model(workdir / "model")
    with LocalCloud(state_dir=workdir / "cloud") as cloud:
        s3, gg, iot = cloud.client("s3"), cloud.client("greengrassv2"), cloud.client("iot")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        model_version = build.model_version(1)
        model_recipe = build.render_recipe(
            "model",
            component_name=MODEL,
            component_version=model_version,
            artifact_uri=f"s3://{bucket}/{MODEL}/{model_version}/model.zip",
        )
        _publish(gg, s3, bucket, model_recipe, build.model_artifact(model_dir))
        code = build.inference_artifact()
        inference_version = build.inference_version(code)
        inference_recipe = build.render_recipe(
            "inference",
            component_name=INFERENCE,
            component_version=inference_version,
            artifact_uri=f"s3://{bucket}/{INFERENCE}/{inference_version}/inference.zip",
            model_component_name=MODEL,
        )
        _publish(gg, s3, bucket, inference_recipe, code)
        thing = f"bench-{uuid.uuid4().hex[:6]}"
        dev = cloud.provision_device(thing, thing_group="bench")
        # as fleet.Fleet.start does for `mlops-edge run`: no options, unless asked to compare
        options = {} if flow_control == RUN_FLOW_CONTROL else {"mqtt_flow_control": flow_control}
        core = start_device(dev, workdir / "core", cloud.env(), options=options)
        # awscrt MQTT5, as devices and Greengrass use; paho's TLS read loop delays bursts of
        # incoming messages (up to its loop timeout), which would be measured instead of the device
        ident = cloud.pipeline_identity
        client = IotConnection(
            Identity(
                "bench-client",
                ident.cert_path,
                ident.key_path,
                ident.ca_path,
                cloud.mqtt.host,
                cloud.mqtt.port,
                # the load generator is not throttled: the device under test is
                flow_control="none",
            ),
            client_id=f"{CLIENT_PREFIX}bench-{uuid.uuid4().hex[:8]}",
        )
        client.start()
        try:
            merge = json.dumps({"PythonPath": py, "TelemetryIntervalSeconds": telemetry_s})
            components = {
                MODEL: {"componentVersion": model_version},
                INFERENCE: {"componentVersion": inference_version, "configurationUpdate": {"merge": merge}},
            }
            group_arn = iot.describe_thing_group(thingGroupName="bench")["thingGroupArn"]
            setup = Setup(
                cloud,
                client,
                thing,
                rows,
                core,
                flow_control,
                model_dir,
                workdir,
                bucket,
                components,
                group_arn,
            )
            _wait_deployed(gg, thing, setup.deploy(components, "bench"))
            yield setup
        finally:
            client.stop()
            stop_device(core, timeout_s=30)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Every mode asked for, on one deployed device."""
    from bench.roundtrip_modes import gc_probe
    from bench.roundtrip_modes.batches import run_batches
    from bench.roundtrip_modes.local_ipc import run_local

    out: dict[str, Any] = {"modes": args.modes, "quick": args.quick, "loadavg_before": loadavg()}
    python = str(gc_probe.prepare(workdir)) if args.gc_probe else sys.executable
    with deployed_device(workdir, flow_control=args.device_flow_control, py=python) as setup:
        out["device"] = setup.describe()
        out["idle_cpu_ms_per_s"] = idle_cpu(Processes(setup.broker_pid, setup.device.pid), 3.0)
        gg = setup.cloud.client("greengrassv2")
        s3 = setup.cloud.client("s3")
        if "mqtt" in args.modes:
            requester = _Requester(setup.client, setup.thing, setup.rows)
            procs = Processes(setup.broker_pid, setup.device.pid)
            before = procs.cpu_seconds()
            result = _measure(
                setup.client, setup.thing, setup.rows, args.rate, args.duration, args.warmup, requester
            )
            result["cpu_ms_per_request"] = per_request(
                before, procs.cpu_seconds(), requester.total_answered()
            )
            out["mqtt"] = result
        if "local" in args.modes:
            out["local_ipc"] = run_local(
                setup,
                lambda recipe, data: _publish(gg, s3, setup.bucket, recipe, data),
                lambda deployment_id: _wait_deployed(gg, setup.thing, deployment_id),
                rate=args.local_rate,
                duration=args.local_duration,
                warmup=args.warmup,
                tick_ms=args.local_tick_ms,
            )
            if args.gc_probe:  # what the collector paused, per process, while the consumer measured
                out["local_ipc"]["gc"] = gc_probe.summary(workdir, *out["local_ipc"]["window"])
        if "batch" in args.modes:
            requester = _Requester(setup.client, setup.thing, setup.rows)
            requester.wait_until_serving()
            out["batches"] = run_batches(
                setup,
                requester,
                rows_per_request=args.batch_rows,
                duration=args.batch_duration,
                warmup=args.warmup,
            )
        if "hops" in args.modes:
            from bench.roundtrip_modes.hops import run_hops

            requester = _Requester(setup.client, setup.thing, setup.rows)
            out["hops"] = run_hops(setup, requester, requests=args.hop_requests, workdir=workdir)
    out["loadavg_after"] = loadavg()
    out["pass"] = all(out[m].get("pass") for m in ("mqtt", "local_ipc", "batches") if m in out)
    return out


def _wait_deployed(gg: Any, thing: str, deployment_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for d in gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]:
            if d["deploymentId"] == deployment_id and d["coreDeviceExecutionStatus"] == "SUCCEEDED":
                return
            if d["deploymentId"] == deployment_id and d["coreDeviceExecutionStatus"] in (
                "FAILED",
                "REJECTED",
            ):
                raise SystemExit(f"deployment failed on the device: {d}")
        time.sleep(0.25)
    raise SystemExit("deployment did not finish")


def _measure(
    client: Any,
    thing: str,
    rows: list[list[float]],
    rate: float,
    duration: float,
    warmup: float,
    requester: _Requester | None = None,
) -> dict[str, Any]:
    requester = requester or _Requester(client, thing, rows)
    requester.wait_until_serving()
    sequential = requester.closed_loop(200)
    # the closed loop spent the device's burst of publishes (IoT Core: 100/s, a second banked);
    # at 100 requests/s nothing refills it, so every result would wait in its throttle: let it refill
    time.sleep(REFILL_S)
    requester.fire(int(rate * warmup), "warm", rate)
    started = time.perf_counter()
    ids = requester.fire(int(rate * duration), "req", rate)
    elapsed = time.perf_counter() - started
    time.sleep(2.0)  # stragglers
    got = requester.answered_of(ids)
    lost = len(ids) - len(got)
    outcome = requester.outcomes(ids)
    return {
        "rate_per_s": rate,
        "duration_s": duration,
        "sent": len(ids),
        "answered": len(got),
        "lost": lost,
        "errors": len(requester.errors),
        "rejected": outcome["rejected"],
        "error_codes": outcome["error_codes"],
        "throughput_per_s": round(len(got) / elapsed, 1),
        "p50_ms": round(_percentile(got, 50), 3),
        "p90_ms": round(_percentile(got, 90), 3),
        "p99_ms": round(_percentile(got, 99), 3),
        "max_ms": round(max(got), 3) if got else None,
        "closed_loop": {
            "requests": 200,
            "answered": len(sequential),
            "p50_ms": round(_percentile(sequential, 50), 3),
            "p99_ms": round(_percentile(sequential, 99), 3),
        },
        "targets": TARGETS,
        "pass": bool(got)
        and _percentile(got, 50) <= TARGETS["p50_ms"]
        and _percentile(got, 99) <= TARGETS["p99_ms"]
        and lost == 0,
    }


def main() -> int:
    from bench.roundtrip_modes.report import print_table

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--modes",
        type=lambda text: [m for m in text.split(",") if m],
        default=["mqtt", "local", "batch"],
        help="comma-separated, of mqtt, local, batch, hops (default: the first three; hops needs perf)",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="MQTT requests/s (device limit: 100/s)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured MQTT load")
    parser.add_argument("--local-rate", type=float, default=2000.0, help="local pub/sub requests/s")
    parser.add_argument("--local-duration", type=float, default=60.0, help="seconds of local pub/sub load")
    parser.add_argument(
        "--local-tick-ms", type=float, default=1.0, help="the consumer sends what is due every this many ms"
    )
    parser.add_argument("--batch-rows", type=int, default=256, help="rows per batch request")
    parser.add_argument("--batch-duration", type=float, default=20.0, help="seconds of batch load")
    parser.add_argument("--hop-requests", type=int, default=300, help="requests traced in the hops mode")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of unmeasured load before each mode"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 s MQTT, 10 s local, 5 s batches")
    parser.add_argument(
        "--device-flow-control",
        choices=["aws-iot-core", "none"],
        default=RUN_FLOW_CONTROL,
        help="the device's MQTT flow control (default: as `mlops-edge run` configures its devices)",
    )
    parser.add_argument(
        "--json", type=Path, default=RESULTS, help=f"write the results here (default {RESULTS})"
    )
    parser.add_argument("--gc-probe", action="store_true", help="local: collector pauses per process")
    parser.add_argument("--workdir", type=Path, help="keep state and logs here (default: a temp dir)")
    args = parser.parse_args()
    unknown = set(args.modes) - {"mqtt", "local", "batch", "hops"}
    if unknown or not args.modes:
        parser.error(f"--modes takes mqtt, local, batch, hops (comma-separated); got {','.join(args.modes)}")
    if args.quick:
        args.duration, args.local_duration, args.batch_duration = 5.0, 10.0, 5.0
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="device-roundtrip-") as tmp:
            result = run(args, Path(tmp))
    print_table(result, TARGETS)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
