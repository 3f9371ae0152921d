"""IAM evaluation cost in the local cloud: what enforcing a role's policies adds to a request.

Measures, with the pipeline stack's own synthesized policies (tests/unit/iam/cases): one
``decide`` (policy evaluation alone), one ``authorize`` of the state machine's Lambda invoke (the
operation mapped to its action and resource ARN, then decided), and the one-time load of the IAM
dataset with the first decision. Prints a table; ``--json PATH`` writes the
figures. Target: a decision costs well under 1 ms, i.e. nothing next to a request's own cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_runtime.inference.stats import percentile
from local_cloud.iam import PolicyKind, authorize, decide, parse_policy, request_for

A, R = "123456789012", "eu-west-1"
CASES = Path(__file__).resolve().parents[1] / "tests" / "unit" / "iam" / "cases" / "cdk_pipeline.json"


def _timed_us(fn: Callable[[], Any], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return {"p50_us": round(percentile(samples, 50), 1), "p99_us": round(percentile(samples, 99), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5000, help="calls per figure")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    started = time.perf_counter()
    from local_cloud.iam import dataset  # noqa: F401 - the dataset loads on first use below

    library = json.loads(CASES.read_text())["policies"]

    def policy(name: str) -> Any:
        entry = library[name]
        return parse_policy(entry["document"], name=name, kind=PolicyKind(f"{entry['kind']}-based"))

    tls = {"aws:SecureTransport": True}
    machine = [policy("StateMachine"), policy("ArtifactsBucketPolicy")]
    function = f"arn:aws:lambda:{R}:{A}:function:mlops-edge-functionsverifyondevice"
    role = f"arn:aws:sts::{A}:assumed-role/StateMachineRole/mlops-edge"
    request = request_for(role, "lambda:InvokeFunction", function, tls, region=R)
    first = authorize(
        principal=role,
        service="lambda",
        operation="Invoke",
        params={"FunctionName": function},
        policies=machine,
        account=A,
        region=R,
        context=tls,
    )
    load_s = time.perf_counter() - started
    figures = {
        "dataset_load_and_first_authorize_s": round(load_s, 3),
        "first_authorize_allowed": first.allowed,
        "decide": _timed_us(lambda: decide(request, machine), args.n),
        "authorize_lambda_invoke": _timed_us(
            lambda: authorize(
                principal=role,
                service="lambda",
                operation="Invoke",
                params={"FunctionName": function},
                policies=machine,
                account=A,
                region=R,
                context=tls,
            ),
            args.n,
        ),
    }
    for name, value in figures.items():
        print(f"{name:40} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
