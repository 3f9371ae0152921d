"""Local pub/sub mode: a consumer component on the device asks the inference component over IPC.

The consumer (:mod:`.consumer`) is published through the greengrassv2 API like any component,
with its own recipe: configuration (topics, rate, duration, the rows to send, where to write its
figures) and ``accessControl`` granting exactly PublishToTopic on the request topic and
SubscribeToTopic on the result topic. A second deployment to the device's thing group keeps the
model and inference components as they were and adds it. No IoT Core limit applies on this path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .cpu import Processes, per_request

CONSUMER = "com.example.bench.RoundtripConsumer"
REQUEST_TOPIC = "edge/inference/request"  # the inference recipe's LocalRequestTopic
RESULT_TOPIC = "edge/inference/result"  # and its LocalResultTopic
ARTIFACT = "roundtrip_consumer.zip"


def consumer_recipe(bucket: str, version: str, inference: str) -> dict[str, Any]:
    """The consumer's recipe: what it may do on local pub/sub, and how it runs."""
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": CONSUMER,
        "ComponentVersion": version,
        "ComponentDescription": "Benchmark: asks the inference component over local pub/sub.",
        "ComponentPublisher": "mlops-edge bench",
        "ComponentDependencies": {inference: {"VersionRequirement": ">=1.0.0", "DependencyType": "SOFT"}},
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                "PythonPath": "python3",
                "RequestTopic": REQUEST_TOPIC,
                "ResultTopic": RESULT_TOPIC,
                "RatePerSecond": 2000,
                "WarmupSeconds": 2,
                "SendIntervalMs": 1,
                "DurationSeconds": 60,
                "OutputDir": "",
                "Rows": [],
                "accessControl": {
                    "aws.greengrass.ipc.pubsub": {
                        f"{CONSUMER}:pubsub:1": {
                            "policyDescription": "Send inference requests to the inference component.",
                            "operations": ["aws.greengrass#PublishToTopic"],
                            "resources": [REQUEST_TOPIC],
                        },
                        f"{CONSUMER}:pubsub:2": {
                            "policyDescription": "Receive the inference component's results.",
                            "operations": ["aws.greengrass#SubscribeToTopic"],
                            "resources": [RESULT_TOPIC],
                        },
                    }
                },
            }
        },
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Artifacts": [{"URI": f"s3://{bucket}/{CONSUMER}/{version}/{ARTIFACT}", "Unarchive": "ZIP"}],
                "Lifecycle": {
                    "Run": {
                        "Script": 'exec "{configuration:/PythonPath}" '
                        '"{artifacts:decompressedPath}/roundtrip_consumer/roundtrip_consumer.py"'
                    }
                },
            }
        ],
    }


def consumer_artifact() -> bytes:
    """The zip: ``roundtrip_consumer.py`` alone (standard library and awsiotsdk on the device)."""
    from pipeline.archive import deterministic_zip

    return deterministic_zip(
        [("roundtrip_consumer.py", (Path(__file__).parent / "consumer.py").read_bytes())]
    )


def run_local(
    setup: Any,
    publish: Any,
    wait_deployed: Any,
    *,
    rate: float,
    duration: float,
    warmup: float,
    tick_ms: float = 1.0,
) -> dict[str, Any]:
    """Deploy the consumer beside the inference component, let it run, collect its figures and CPU.

    ``publish(recipe, data)`` and ``wait_deployed(deployment_id)`` are the entry point's.
    """
    import hashlib
    import sys

    data = consumer_artifact()
    version = f"1.0.{int(hashlib.sha256(data).hexdigest()[:7], 16)}"
    out = setup.workdir / f"consumer-{int(time.time())}"
    out.mkdir(parents=True)
    publish(consumer_recipe(setup.bucket, version, setup.inference_name), data)
    merge = {
        "PythonPath": sys.executable,
        "RatePerSecond": rate,
        "DurationSeconds": duration,
        "WarmupSeconds": warmup,
        "SendIntervalMs": tick_ms,
        "OutputDir": str(out),
        "Rows": setup.rows,
    }
    components = dict(setup.components)
    components[CONSUMER] = {"componentVersion": version, "configurationUpdate": {"merge": json.dumps(merge)}}
    deployment_id = setup.deploy(components, "bench-local-ipc")
    wait_deployed(deployment_id)
    procs = Processes(setup.broker_pid, setup.device.pid)
    _wait_for(out / "started", 180, setup)
    before = procs.cpu_seconds()
    _wait_for(out / "result.json", duration + 120, setup)
    after = procs.cpu_seconds()
    result = json.loads((out / "result.json").read_text())
    started = float((out / "started").read_text())
    result["window"] = [started, started + duration]  # wall clock: --gc-probe counts pauses inside
    # the consumer has exited by now: its CPU is its own figure (getrusage), over the same window
    after.pop("consumer component", None)
    result["cpu_ms_per_request"] = per_request(
        before, after, result["answered"], **{"consumer component": result["cpu_s"]}
    )
    result["pass"] = (
        result["lost"] == 0
        and result["errors"] == 0
        and result["send_rate_per_s"] >= 0.98 * rate
        and (result["p99_ms"] or 1e9) <= 10.0
    )
    return result


def _wait_for(path: Path, timeout_s: float, setup: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the consumer component wrote no {path.name} in {timeout_s:.0f} s (see {setup.device.log_path})"
            )
        if setup.device.process.poll() is not None:
            raise SystemExit(f"the device exited (see {setup.device.log_path})")
        time.sleep(0.05)
