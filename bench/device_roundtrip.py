"""Request -> result latency through a simulated core running the inference component.

One local cloud (broker, S3, greengrassv2), one ``mlops-edge device run`` process started as
``mlops-edge run`` starts its devices (``mlops_edge.environment.fleet``, no options: IoT Core's flow
control on, so what the device publishes is held to 100 publishes/s), the model and inference
components published and deployed through the greengrassv2 API; a client publishes single-row
requests over MQTT (mTLS, QoS 1) at a steady rate and measures the time until the matching result
arrives. The load client itself is not throttled (on AWS, more than 100 requests/s to one device
need more than one client connection). Prints a table and writes JSON (``--json PATH``).

The default rate, 80 requests/s, is below the device's publish limit (results and telemetry share
it); above the limit the device answers what the limit lets through and rejects the rest with
THROTTLED/BUSY (see bench/reliability.py). ``--device-flow-control none`` measures a device without
the limit, as this benchmark did before issue 13.

Targets: p50 <= 2 ms, p99 <= 10 ms, 0 lost (the public reference sample: about 25 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
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

from edge_runtime.inference.stats import percentile  # noqa: E402 - after the path fix above

TARGETS = {"p50_ms": 2.0, "p99_ms": 10.0, "lost": 0}
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

    def describe(self) -> dict[str, Any]:
        return {
            "device_flow_control": self.flow_control,
            "configured_as_mlops_edge_run": self.flow_control == RUN_FLOW_CONTROL,
            "device_publish_limit_per_s": 100 if self.flow_control == RUN_FLOW_CONTROL else None,
            "load_client_flow_control": "none",
        }


@contextlib.contextmanager
def deployed_device(
    workdir: Path, *, flow_control: str = RUN_FLOW_CONTROL, telemetry_s: float = 5.0
) -> Iterator[Setup]:
    """Local cloud + one ``mlops-edge device run`` process, deployed through greengrassv2."""
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
            merge = json.dumps({"PythonPath": sys.executable, "TelemetryIntervalSeconds": telemetry_s})
            deployment = gg.create_deployment(
                targetArn=iot.describe_thing_group(thingGroupName="bench")["thingGroupArn"],
                deploymentName="bench",
                components={
                    MODEL: {"componentVersion": model_version},
                    INFERENCE: {
                        "componentVersion": inference_version,
                        "configurationUpdate": {"merge": merge},
                    },
                },
            )
            _wait_deployed(gg, thing, deployment["deploymentId"])
            yield Setup(cloud, client, thing, rows, core, flow_control, model_dir)
        finally:
            client.stop()
            stop_device(core, timeout_s=30)


def run(rate: float, duration: float, warmup: float, workdir: Path, flow_control: str) -> dict[str, Any]:
    with deployed_device(workdir, flow_control=flow_control) as setup:
        result = _measure(setup.client, setup.thing, setup.rows, rate, duration, warmup)
        return {**setup.describe(), **result}


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


class _Requester:
    """Sends requests to one device and times each answer by its id (one subscriber, one lock)."""

    def __init__(self, client: Any, thing: str, rows: list[list[float]]) -> None:
        self.client, self.thing, self.rows = client, thing, rows
        self.sent: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.errors: list[dict] = []
        self.unmatched: list[dict] = []  # answers without a known id (malformed requests)
        self.duplicates = 0
        self.lock = threading.Lock()
        self.answered = threading.Condition(self.lock)
        client.subscribe(f"edge/{thing}/inference/result", self._on_result)

    def _on_result(self, _topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        message = json.loads(payload)
        # one result, or several overload rejections together ({"results": [...]})
        for body in message.get("results", [message]):
            self._record(body, now)

    def _record(self, body: dict, now: float) -> None:
        with self.lock:
            rid = body.get("id")
            start = self.sent.get(rid) if isinstance(rid, str) else None
            if start is None:
                self.unmatched.append(body)
            elif rid in self.latencies:
                self.duplicates += 1
            else:
                self.latencies[rid] = (now - start) * 1000.0
                if not body.get("ok"):
                    self.errors.append(body)
            self.answered.notify_all()

    def send(self, rid: str, row: list[float]) -> None:
        self.send_raw(rid, json.dumps({"id": rid, "instances": [row]}).encode())

    def send_raw(self, rid: str | None, body: bytes) -> None:
        """Publish ``body`` as it is; ``rid`` is the id its answer will carry (None: none)."""
        if rid is not None:
            with self.lock:
                self.sent[rid] = time.perf_counter()
        self.client.publish(f"edge/{self.thing}/inference/request", body, 1)  # no wait for PUBACK

    def wait_until_serving(self) -> None:
        probe = f"probe-{uuid.uuid4().hex}"
        while probe not in self.latencies:
            self.send(probe, self.rows[0])
            time.sleep(0.5)

    def fire(self, count: int, tag: str, rate: float) -> list[str]:
        """Open loop at ``rate``: requests go out on schedule whether or not answers came back."""
        ids, period, next_t = [], 1.0 / rate, time.perf_counter()
        for i in range(count):
            now = time.perf_counter()
            if next_t > now:
                time.sleep(next_t - now)
            rid = f"{tag}-{i}"
            self.send(rid, self.rows[i % len(self.rows)])
            ids.append(rid)
            next_t += period
        return ids

    def closed_loop(self, count: int) -> list[float]:
        """One request at a time: the round trip without queueing behind earlier requests."""
        out = []
        for i in range(count):
            rid = f"seq-{i}"
            self.send(rid, self.rows[i % len(self.rows)])
            with self.answered:  # block, do not poll: a polling thread delays the others' GIL hand-offs
                self.answered.wait_for(lambda rid=rid: rid in self.latencies, timeout=5)
            if rid in self.latencies:
                out.append(self.latencies[rid])
        return out

    def answered_of(self, ids: list[str]) -> list[float]:
        with self.lock:
            return [self.latencies[i] for i in ids if i in self.latencies]

    def outcomes(self, ids: list[str]) -> dict[str, Any]:
        """Of ``ids``: answered with a result, rejected (by code), other errors, unanswered."""
        with self.lock:
            errors = {e["id"]: e["error"]["code"] for e in self.errors if e.get("id") in self.sent}
            ok = [self.latencies[i] for i in ids if i in self.latencies and i not in errors]
            rejected = [i for i in ids if errors.get(i) in ("THROTTLED", "BUSY")]
            codes: dict[str, int] = {}
            for i in ids:
                if i in errors:
                    codes[errors[i]] = codes.get(errors[i], 0) + 1
            return {
                "sent": len(ids),
                "ok": len(ok),
                "rejected": len(rejected),
                "error_codes": codes,
                "unanswered": sum(1 for i in ids if i not in self.latencies),
                "ok_latencies_ms": ok,
                "rejected_latencies_ms": [self.latencies[i] for i in rejected],
            }


def _measure(
    client: Any, thing: str, rows: list[list[float]], rate: float, duration: float, warmup: float
) -> dict[str, Any]:
    requester = _Requester(client, thing, rows)
    requester.wait_until_serving()
    sequential = requester.closed_loop(200)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=80.0, help="requests per second (the device publishes at most 100/s)"
    )
    parser.add_argument(
        "--device-flow-control",
        choices=["aws-iot-core", "none"],
        default=RUN_FLOW_CONTROL,
        help="the device's MQTT flow control (default: as `mlops-edge run` configures its devices)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured load")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep state and logs here (default: a temp dir)")
    args = parser.parse_args()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args.rate, args.duration, args.warmup, args.workdir, args.device_flow_control)
    else:
        with tempfile.TemporaryDirectory(prefix="device-roundtrip-") as tmp:
            result = run(args.rate, args.duration, args.warmup, Path(tmp), args.device_flow_control)
    rows = [
        ("rate (req/s)", result["rate_per_s"], ""),
        ("sent / answered", f"{result['sent']} / {result['answered']}", ""),
        ("lost", result["lost"], f"target {TARGETS['lost']}"),
        ("error results", result["errors"], f"of which THROTTLED/BUSY {result['rejected']}"),
        ("throughput (req/s)", result["throughput_per_s"], ""),
        ("latency p50 (ms)", result["p50_ms"], f"target <= {TARGETS['p50_ms']}"),
        ("latency p90 (ms)", result["p90_ms"], ""),
        ("latency p99 (ms)", result["p99_ms"], f"target <= {TARGETS['p99_ms']}"),
        ("latency max (ms)", result["max_ms"], ""),
    ]
    print("device round trip: MQTT request -> core -> IPC -> inference component -> IPC -> MQTT result")
    if result["configured_as_mlops_edge_run"]:
        print("  device configured as `mlops-edge run` configures it: flow control on (publishes <= 100/s)")
    else:
        print(f"  device flow control {result['device_flow_control']}: NOT as `mlops-edge run` runs devices")
    for name, value, note in rows:
        print(f"  {name:<22} {value!s:>14}  {note}")
    seq = result["closed_loop"]
    print(
        f"  {'closed loop (1 at a time)':<22} p50 {seq['p50_ms']} ms, p99 {seq['p99_ms']} ms "
        f"({seq['answered']}/{seq['requests']})"
    )
    print(f"  {'result':<22} {'PASS' if result['pass'] else 'FAIL':>14}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
