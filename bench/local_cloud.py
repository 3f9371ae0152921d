"""Local cloud figures: start-up time, Lambda invoke latency (cold and warm), MQTT round trip.

Starts the local cloud a few times in fresh state directories (start-up = `LocalCloud.start()`
until the endpoint answers), creates a tiny Python function and measures invoke latency through
boto3 as a caller sees it: the first invoke of a function (cold: a worker process starts and
imports the handler) and the following ones (warm worker). Prints a table; `--json PATH` writes the
figures. Target: start-up <= 3 s.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_runtime.inference.stats import percentile
from local_cloud import LocalCloud

HANDLER = "def handler(event, context):\n    return {'ok': True, 'n': event.get('n')}\n"
BOTO_HANDLER = "import boto3\n\ndef handler(event, context):\n    return {'buckets': len(boto3.client('s3').list_buckets()['Buckets'])}\n"


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("h.py", source)
    return buf.getvalue()


def _pct(values: list[float], q: float) -> float:
    """The project's nearest-rank percentile (``q`` in 0..100), so figures compare across reports."""
    value = percentile(values, q)
    if value is None:
        raise ValueError("no samples to take a percentile of")
    return value


def measure(starts: int, warm_invokes: int, cold_functions: int) -> dict:
    results: dict = {"startup_s": [], "stop_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(starts):
            cloud = LocalCloud(Path(tmp) / f"s{i}")
            cloud.start()
            results["startup_s"].append(cloud.startup_seconds)
            if i < starts - 1:
                t = time.perf_counter()
                cloud.stop()
                results["stop_s"].append(time.perf_counter() - t)
        try:
            iam = cloud.client("iam")
            trust = {  # Lambda must be able to assume it (the endpoint enforces IAM by default)
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"][
                "Arn"
            ]
            lam = cloud.client("lambda")
            cold: dict[str, list[float]] = {"plain": [], "boto3": []}
            for kind, source in (("plain", HANDLER), ("boto3", BOTO_HANDLER)):
                for j in range(cold_functions):
                    name = f"{kind}-{j}"
                    lam.create_function(
                        FunctionName=name,
                        Runtime="python3.11",
                        Role=role,
                        Handler="h.handler",
                        Code={"ZipFile": _zip(source)},
                    )
                    t = time.perf_counter()
                    lam.invoke(FunctionName=name, Payload=b'{"n": 0}')["Payload"].read()
                    cold[kind].append(time.perf_counter() - t)
            warm: dict[str, list[float]] = {"plain": [], "boto3": []}
            for kind in warm:
                for k in range(warm_invokes):
                    t = time.perf_counter()
                    lam.invoke(FunctionName=f"{kind}-0", Payload=json.dumps({"n": k}))["Payload"].read()
                    warm[kind].append(time.perf_counter() - t)
            results["cold_invoke_s"] = cold
            results["warm_invoke_s"] = warm
        finally:
            t = time.perf_counter()
            cloud.stop()
            results["stop_s"].append(time.perf_counter() - t)
    return results


def summarize(raw: dict) -> list[tuple[str, float, float, float, int]]:
    rows = [("start-up (LocalCloud.start)", raw["startup_s"]), ("stop", raw["stop_s"])]
    for kind in ("plain", "boto3"):
        rows.append((f"Lambda invoke, cold ({kind} handler)", raw["cold_invoke_s"][kind]))
        rows.append((f"Lambda invoke, warm ({kind} handler)", raw["warm_invoke_s"][kind]))
    return [(name, _pct(v, 50) * 1000, _pct(v, 90) * 1000, max(v) * 1000, len(v)) for name, v in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    raw = measure(args.starts, args.warm, args.cold)
    table = summarize(raw)
    print(f"{'what':42} {'p50 ms':>9} {'p90 ms':>9} {'max ms':>9} {'n':>5}")
    for name, p50, p90, worst, n in table:
        print(f"{name:42} {p50:9.1f} {p90:9.1f} {worst:9.1f} {n:5d}")
    ok = _pct(raw["startup_s"], 50) <= 3.0
    print(f"start-up target <= 3 s: {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "raw": raw,
                    "summary": [
                        dict(zip(("what", "p50_ms", "p90_ms", "max_ms", "n"), row, strict=True))
                        for row in table
                    ],
                    "startup_target_met": ok,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
