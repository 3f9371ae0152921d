"""Reliability figures (issue 13): identities refused, load at and beyond IoT Core's limit, fuzzing.

One local cloud and one device started as ``mlops-edge run`` starts its devices (flow control on:
what the device publishes is held to IoT Core's 100 publishes/s), with the inference component
deployed through greengrassv2 (the set-up of ``bench/device_roundtrip.py``). Then:

- identities: certificates connecting with client ids that are not theirs (another thing's, the
  control plane's, the pipeline's) and subscribing outside their policy (another thing's topics,
  ``#``) on the real broker with paho; every attempt must be refused (CONNACK/SUBACK 0x87), and the
  device whose id was tried must still answer;
- load at the limit: 100 requests/s for ``--load-seconds`` (60): every request answered, 0 lost;
- overload: 300 requests/s for ``--overload-seconds`` (10): every request answered or explicitly
  rejected (THROTTLED/BUSY with its id), 0 silent losses;
- fuzzing: ``--fuzz`` (3,000) payloads, valid and invalid mixed (seeded), at 80/s: every one
  answered (by id, or with a null id for those without a usable one), the component process the
  same one at the end, its RSS bounded.

Prints one table and writes JSON (``--json PATH``). ``--quick`` shortens everything (a smoke run:
5 s, 3 s, 600 payloads). The load client is not throttled itself (on AWS, more than 100
requests/s to one device need more than one connection).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/local_cloud.py
sys.path.insert(0, str(_HERE.parent))

# the sections live in bench/reliability_checks/, one module each
from bench.reliability_checks import roundtrip  # noqa: E402 - after the path fix above
from bench.reliability_checks.fuzzing import fuzz  # noqa: E402
from bench.reliability_checks.identities import identities  # noqa: E402
from bench.reliability_checks.load import load  # noqa: E402
from bench.reliability_checks.report import _passed, table  # noqa: E402


# -- the run ------------------------------------------------------------------------------------
def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with roundtrip.deployed_device(workdir, telemetry_s=5.0) as setup:
        requester = roundtrip._Requester(setup.client, setup.thing, setup.rows)
        requester.wait_until_serving()
        result: dict[str, Any] = {**setup.describe()}
        result["identities"] = identities(setup)
        result["load_at_limit"] = load(setup, rate=100.0, seconds=args.load_seconds, tag="limit")
        time.sleep(2.0)
        result["overload"] = load(setup, rate=300.0, seconds=args.overload_seconds, tag="over")
        time.sleep(2.0)
        result["fuzz"] = fuzz(setup, count=args.fuzz)
        result["device_alive"] = setup.device.alive()
    result["pass"] = _passed(result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load-seconds", type=float, default=60.0, help="seconds at 100 req/s")
    parser.add_argument("--overload-seconds", type=float, default=10.0, help="seconds at 300 req/s")
    parser.add_argument("--fuzz", type=int, default=3000, help="fuzzed payloads")
    parser.add_argument("--quick", action="store_true", help="5 s, 3 s and 600 payloads (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep state and logs here (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.load_seconds, args.overload_seconds, args.fuzz = 5.0, 3.0, 600
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
            result = run(args, Path(tmp))
    print("reliability: a device as `mlops-edge run` configures it (flow control on, publishes <= 100/s)")
    for section, name, value in table(result):
        print(f"  {section:<18} {name:<38} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
