"""1,000 lightweight job clients through a two-stage rollout: wall time and what it costs the cloud.

A fresh local cloud (endpoint + mosquitto) and ``mlops_edge.environment.job_clients``: 1,000
things, each with its own certificate, MQTT connection and awsiot IotJobsClient, all in this
process. A canary stage (``--canary-percent`` of the fleet, moved to the canary thing group as
the pipeline's canary stage does) and then the fleet stage (everyone else) are each one
Greengrass deployment with the pipeline's default IoT job settings
(``pipeline.config.rollout.iot_job_from_deployment``: 100 things a minute, abort at 10 % failed,
30 minutes in progress), on a local "minute" of ``--minute-s`` seconds
(``MLOPS_EDGE_LOCAL_MINUTE_S``): the default rates, time-scaled.

Figures: wall time (everything, cloud start included), provisioning (certificates + IoT API) and
connect time, each stage's time from CreateDeployment to the last device's final report and the
number of things notified in each local minute (the rollout rate, to compare with
``maximumPerMinute``), the CPU seconds of the broker and of the endpoint process (the control
plane serves the jobs topics there) during the rollout and in all, and peak RSS of the broker, the
endpoint and this process (the 1,000 clients). Prints a table and writes JSON (default
bench/results/fleet_jobs.json). ``run(...)`` returns the same dict (``bench/fleet.py`` calls it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

# bench/ holds local_cloud.py (another benchmark): it must not shadow the local_cloud package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import psutil  # noqa: E402 - after the path fix above

from local_cloud import LocalCloud  # noqa: E402
from mlops_edge.environment.job_clients import JobClientFleet, job_client_names  # noqa: E402
from pipeline.config.rollout import iot_job_from_deployment  # noqa: E402

ACCOUNT = "123456789012"
COMPONENT = "com.example.bench.JobClients"
MINUTE_ENV = "MLOPS_EDGE_LOCAL_MINUTE_S"
MIB = 1 << 20


class Sampler(threading.Thread):
    """Peak RSS of the broker, the endpoint and this process, every 0.5 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak_rss = dict.fromkeys(pids, 0)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for name, proc in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    self.peak_rss[name] = max(self.peak_rss[name], proc.memory_info().rss)

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) of each process so far."""
        out = {}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[name] = times.user + times.system
        return out


def _component(gg: Any) -> None:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": COMPONENT,
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Lifecycle": {}}],
    }
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    deadline = time.monotonic() + 60
    while gg.describe_component(arn=arn)["status"]["componentState"] != "DEPLOYABLE":
        if time.monotonic() > deadline:
            raise SystemExit(f"{arn} never became DEPLOYABLE")
        time.sleep(0.1)


def stage(
    cloud: Any, fleet: JobClientFleet, group: str, devices: list[str], minute_s: float
) -> dict[str, Any]:
    """One stage: a deployment to ``group`` with the default IoT job settings, until every one of
    ``devices`` reported; the per-minute notification counts are the rollout rate achieved."""
    gg = cloud.client("greengrassv2")
    iot_job = iot_job_from_deployment({})
    started = time.monotonic()
    created = gg.create_deployment(
        targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}",
        deploymentName=group,
        components={COMPONENT: {"componentVersion": "1.0.0"}},
        iotJobConfiguration=iot_job,
    )
    rate = iot_job["jobExecutionsRolloutConfig"]["maximumPerMinute"]
    deadline = started + minute_s * (len(devices) / rate + 3) + 120
    while True:  # until every device reported, the job was aborted, or far past the expected end
        outcomes = fleet.wait_finished(created["iotJobId"], len(devices), 2.0)
        if sum(1 for o in outcomes.values() if o.finished_at) >= len(devices):
            status = "COMPLETED"
            break
        status = gg.get_deployment(deploymentId=created["deploymentId"])["deploymentStatus"]
        if status == "CANCELED" or time.monotonic() > deadline:
            break
    seconds = time.monotonic() - started
    statuses = Counter(o.status for o in outcomes.values())
    minutes = Counter(int((o.notified_at - started) // minute_s) for o in outcomes.values())
    job: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # iot:DescribeJob on a deployment's job, where served
        job = cloud.client("iot").describe_job(jobId=created["iotJobId"])["job"].get("jobProcessDetails", {})
    return {
        "group": group,
        "status": status,  # COMPLETED: every device reported; CANCELED: aborted; else timed out
        "devices": len(devices),
        "notified": len(outcomes),
        "statuses": dict(statuses),
        "seconds": round(seconds, 2),
        "local_minutes": round(seconds / minute_s, 2),
        "notified_per_minute": [minutes.get(m, 0) for m in range(max(minutes, default=-1) + 1)],
        "maximum_per_minute": rate,
        "describe_job": job,
    }


def _rollout(cloud: LocalCloud, root: Path, clients: int, canary_percent: float, minute_s: float,
             failure_share: float, out: dict[str, Any]) -> None:  # fmt: skip
    """Provision, connect, then the canary stage and the fleet stage; figures into ``out``."""
    prefix = f"bench-jc-{uuid.uuid4().hex[:4]}-"
    names = job_client_names(clients, prefix)
    group, canary_group = f"{prefix}fleet", f"{prefix}fleet-canary"
    canary = names[: max(1, round(clients * canary_percent / 100))]
    sampler = Sampler(
        {"broker": int(cloud.info["mosquitto_pid"]), "endpoint": cloud.process.pid, "clients": os.getpid()}  # type: ignore[union-attr]
    )
    sampler.start()
    cpu_start = sampler.cpu()
    fleet = JobClientFleet(
        cloud, root=root / "clients", thing_group=group, names=names, failure_share=failure_share
    )
    with fleet:
        fleet.start()
        out["provision_s"] = round(fleet.timings["provision_s"], 2)
        out["connect_s"] = round(fleet.timings["connect_s"], 2)
        started = time.monotonic()
        fleet.regroup(canary, canary_group)
        out["regroup_s"] = round(time.monotonic() - started, 2)
        _component(cloud.client("greengrassv2"))
        cpu_rollout = sampler.cpu()
        started = time.monotonic()
        out["stages"] = [stage(cloud, fleet, canary_group, canary, minute_s)]
        if out["stages"][0]["status"] == "COMPLETED":  # a failed canary stops the rollout
            out["stages"].append(stage(cloud, fleet, group, names[len(canary) :], minute_s))
        out["rollout_s"] = round(time.monotonic() - started, 2)
        cpu_end = sampler.cpu()
    sampler.stopped.set()
    out["cpu_s_rollout"] = {k: round(cpu_end[k] - cpu_rollout.get(k, 0.0), 2) for k in cpu_end}
    out["cpu_s_total"] = {k: round(cpu_end[k] - cpu_start.get(k, 0.0), 2) for k in cpu_end}
    out["peak_rss_mib"] = {k: round(v / MIB, 1) for k, v in sampler.peak_rss.items()}


def run(
    clients: int = 1000,
    *,
    canary_percent: float = 10.0,
    minute_s: float = 6.0,
    failure_share: float = 0.0,
    state_dir: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark on a fresh local cloud; returns the figures (see the module doc)."""
    if clients < 2:
        raise ValueError("a two-stage rollout needs at least 2 job clients")
    if not 0.0 <= failure_share <= 1.0:
        raise ValueError(f"failure share must be between 0 and 1, not {failure_share}")
    if not minute_s > 0:
        raise ValueError(f"a local minute must last more than 0 s, not {minute_s}")
    if not 0 < canary_percent < 100:
        raise ValueError(f"canary percent must be between 0 and 100, not {canary_percent}")
    previous = os.environ.get(MINUTE_ENV)
    os.environ[MINUTE_ENV] = str(minute_s)  # the endpoint reads it when it starts
    out: dict[str, Any] = {"clients": clients, "canary_percent": canary_percent, "minute_s": minute_s,
                           "failure_share": failure_share, "load_average_before": list(os.getloadavg())}  # fmt: skip
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            root = state_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-jobs-")))
            cloud = stack.enter_context(LocalCloud(root / "cloud", startup_timeout=120))
            out["cloud_start_s"] = round(cloud.startup_seconds, 2)
            _rollout(cloud, root, clients, canary_percent, minute_s, failure_share, out)
    finally:
        if previous is None:
            os.environ.pop(MINUTE_ENV, None)
        else:
            os.environ[MINUTE_ENV] = previous
    out["wall_s"] = round(time.monotonic() - started, 2)
    out["load_average_after"] = list(os.getloadavg())
    out["cpus"] = os.cpu_count()
    return out


def print_table(out: dict[str, Any]) -> None:
    rows = [
        ("job clients", out["clients"]),
        ("wall time, all (s)", out["wall_s"]),
        ("local cloud start (s)", out["cloud_start_s"]),
        ("provision: certificates + IoT API (s)", out["provision_s"]),
        ("connect + subscribe (s)", out["connect_s"]),
        ("rollout, both stages (s)", out["rollout_s"]),
    ]
    for st in out["stages"]:
        rows.append((f"stage {st['group']}: {st['status']}, devices / s / local minutes", f"{st['devices']} / {st['seconds']} / {st['local_minutes']}"))  # fmt: skip
        rows.append(("  statuses", st["statuses"]))
        rows.append((f"  notified per minute (max {st['maximum_per_minute']})", st["notified_per_minute"]))
    for key in ("cpu_s_rollout", "cpu_s_total", "peak_rss_mib"):
        rows.append((key, ", ".join(f"{k} {v}" for k, v in out[key].items())))
    rows.append(("load average before / after", f"{out['load_average_before'][0]:.2f} / {out['load_average_after'][0]:.2f}"))  # fmt: skip
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--canary-percent", type=float, default=10.0)
    parser.add_argument("--minute-s", type=float, default=6.0, help="seconds in a local minute")
    parser.add_argument("--failure-share", type=float, default=0.0, help="share of devices that fail (0..1)")
    parser.add_argument("--json", type=Path, default=_HERE / "results" / "fleet_jobs.json")
    args = parser.parse_args()
    try:
        out = run(args.clients, canary_percent=args.canary_percent, minute_s=args.minute_s,
                  failure_share=args.failure_share)  # fmt: skip
    except ValueError as exc:
        raise SystemExit(f"fleet_jobs: {exc}") from None
    print_table(out)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
