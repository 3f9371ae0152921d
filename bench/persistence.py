"""What durability costs (issue 13 item 2): every mutating request is snapshotted before its answer.

Two parts, each measured with durability on (the default) and off (``LOCAL_CLOUD_DURABLE=0``,
state saved at a clean stop only, as before), interleaved so that the machine's load (2 shared
cores) hits both alike:

1. per call: latency of mutating calls through boto3 on a fresh endpoint — S3 PutObject 1 KiB and
   1 MiB, PutObject with 500 objects already in the bucket (the S3 snapshot pickles every object's
   metadata, never the bodies), CreateModelPackage, IAM CreateRole, SSM PutParameter,
   Greengrass CreateComponentVersion — and a read (GetObject) as a control;
2. per run: the wall time of ``mlops-edge run`` (1 device, ``num_round=20``) on a fresh state
   dir, and the snapshots the endpoint made during it (its ``endpoint.log`` summary line).

Prints a table; ``--json PATH`` writes the figures (default bench/results/persistence.json).
``--runs 0`` skips part 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_runtime.inference.stats import percentile  # noqa: E402
from local_cloud import LocalCloud  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    value = percentile(values, q)
    if value is None:
        raise ValueError("no samples")
    return round(value, 2)


def _timed(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append(1000 * (time.perf_counter() - started))
    return out


def _calls(cloud: LocalCloud, n: int) -> dict[str, list[float]]:
    s3, sm, iam, ssm, gg = (cloud.client(s) for s in ("s3", "sagemaker", "iam", "ssm", "greengrassv2"))
    s3.create_bucket(Bucket="bench")
    small, big = os.urandom(1024), os.urandom(1024 * 1024)
    sm.create_model_package_group(ModelPackageGroupName="bench")
    spec = {
        "Containers": [{"Image": "x"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
    out: dict[str, list[float]] = {}
    out["PutObject 1 KiB"] = _timed(
        lambda: s3.put_object(Bucket="bench", Key=uuid.uuid4().hex, Body=small), n
    )
    out["PutObject 1 MiB"] = _timed(lambda: s3.put_object(Bucket="bench", Key=uuid.uuid4().hex, Body=big), n)
    s3.create_bucket(Bucket="full")
    for i in range(500):
        s3.put_object(Bucket="full", Key=f"k{i}", Body=small)
    out["PutObject 1 KiB, 500 objects"] = _timed(
        lambda: s3.put_object(Bucket="full", Key=uuid.uuid4().hex, Body=small), n
    )
    out["GetObject 1 KiB (read)"] = _timed(lambda: s3.get_object(Bucket="full", Key="k1")["Body"].read(), n)
    out["CreateModelPackage"] = _timed(
        lambda: sm.create_model_package(ModelPackageGroupName="bench", InferenceSpecification=spec), n
    )
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    out["IAM CreateRole"] = _timed(
        lambda: iam.create_role(RoleName=uuid.uuid4().hex[:20], AssumeRolePolicyDocument=trust), n
    )
    out["SSM PutParameter"] = _timed(
        lambda: ssm.put_parameter(Name=f"/b/{uuid.uuid4().hex}", Value="v", Type="String"), n
    )

    def component() -> None:
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.bench.C",
            "ComponentVersion": f"1.0.{time.monotonic_ns()}",
            "Manifests": [],
        }
        gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())

    out["CreateComponentVersion"] = _timed(component, n)
    return out


def per_call(n: int, rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    samples: dict[str, dict[str, list[float]]] = {"on": {}, "off": {}}
    inside: dict[str, Any] = {}  # the endpoint's own snapshot timings (the time added in the request path)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                os.environ["LOCAL_CLOUD_DURABLE"] = "1" if mode == "on" else "0"
                with LocalCloud(Path(tmp) / f"{mode}{r}") as cloud:
                    for name, values in _calls(cloud, n).items():
                        samples[mode].setdefault(name, []).extend(values)
                if mode == "on":
                    match = _SUMMARY.search((Path(tmp) / f"{mode}{r}" / "endpoint.log").read_text())
                    if match:
                        inside[f"endpoint {r}"] = json.loads(match.group(1))
    os.environ.pop("LOCAL_CLOUD_DURABLE", None)
    table = {}
    for name in samples["on"]:
        on, off = samples["on"][name], samples["off"][name]
        table[name] = {
            "n": len(on),
            "off_p50_ms": _pct(off, 50),
            "on_p50_ms": _pct(on, 50),
            "added_p50_ms": round(_pct(on, 50) - _pct(off, 50), 2),
            "off_p90_ms": _pct(off, 90),
            "on_p90_ms": _pct(on, 90),
        }
    return table, inside


_SUMMARY = re.compile(r"durable snapshots: (\{.*\})")


def one_run(state: Path, durable: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_EDGE_"))}
    env["LOCAL_CLOUD_DURABLE"] = "1" if durable else "0"
    command = [sys.executable, "-m", "mlops_edge.main", "run", "--state-dir", str(state)]
    command += ["--devices", "1", "--hp", "num_round=20", "--name", "bench"]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    wall = time.monotonic() - started
    out: dict[str, Any] = {"durable": durable, "exit_code": proc.returncode, "wall_s": round(wall, 1)}
    report = state / "runs" / "bench" / "report.json"
    if report.exists():
        out["execution_s"] = json.loads(report.read_text()).get("total_s")
    log = state / "cloud" / "endpoint.log"
    match = _SUMMARY.search(log.read_text()) if log.exists() else None
    if match:
        snapshots = json.loads(match.group(1))
        out["snapshots"] = sum(s["snapshots"] for s in snapshots.values())
        out["snapshot_s"] = round(sum(s.get("total_ms", 0) for s in snapshots.values()) / 1000, 2)
        out["by_service"] = snapshots
    return out


def per_run(runs: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            for durable in (False, True):
                results.append(one_run(Path(tmp) / f"{'on' if durable else 'off'}{r}", durable))
                print(json.dumps({k: v for k, v in results[-1].items() if k != "by_service"}), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30, help="calls of each kind per endpoint")
    parser.add_argument("--rounds", type=int, default=2, help="endpoints per mode (interleaved)")
    parser.add_argument("--runs", type=int, default=1, help="mlops-edge runs per mode (0: skip)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "persistence.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    calls, inside = per_call(args.calls, args.rounds) if args.calls else ({}, {})
    print(
        f"{'mutating call (boto3, client side)':34} {'n':>4} {'off p50':>8} {'on p50':>8} {'added':>7} {'off p90':>8} {'on p90':>8}"
    )
    for name, row in calls.items():
        print(
            f"{name:34} {row['n']:>4} {row['off_p50_ms']:>7.1f}  {row['on_p50_ms']:>7.1f}  "
            f"{row['added_p50_ms']:>+6.1f}  {row['off_p90_ms']:>7.1f}  {row['on_p90_ms']:>7.1f}   ms"
        )
    for endpoint, services in inside.items():
        print(
            f"{endpoint}, snapshot in the request path (server side): "
            + ", ".join(
                f"{svc} {v['requests']} req / {v['snapshots']} snap p50 {v['p50_ms']} ms max {v['max_ms']} ms"
                for svc, v in services.items()
            )
        )
    runs = per_run(args.runs) if args.runs else []
    for run in runs:
        print(
            f"mlops-edge run, durability {'on ' if run['durable'] else 'off'}: exit {run['exit_code']}, "
            f"wall {run['wall_s']} s, execution {run.get('execution_s')} s"
            + (f", {run['snapshots']} snapshots taking {run['snapshot_s']} s" if "snapshots" in run else "")
        )
    result = {
        "calls": calls,
        "server_side_snapshots": inside,
        "runs": runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
