"""100 full simulated devices through a canary rollout: wall time and the machine's memory.

Runs ``mlops-edge run --devices 100 --canary 10`` as a user would (a subprocess, ``--keep`` so the
fleet is still up when the report is written), and meanwhile samples:

- the whole machine's used memory, ``MemTotal - MemAvailable`` from /proc/meminfo, every 0.5 s
  (its peak, and the baseline before the run: other work on the machine counts in it too);
- the sum of RSS of the run's device processes (each core and each inference component) every 2 s;
- once the report exists (every stage deployed and verified), each device's processes in full
  (psutil's RSS, PSS and USS): the "warm" per-device figures, then it stops the run (SIGINT,
  which stops every process the run started, by PID).

Each device is its own core process (``python -m edge_runtime.core``) and its own inference component process
(onnxruntime), started by the recipe's lifecycle: nothing is shared or forked. Shared library pages
count once in the machine's figure and are split in PSS; USS is what a device alone costs.

Then, unless ``--skip-job-clients``, the 1,000 lightweight job clients part: ``bench.fleet_jobs.run()``
when that module exists (its figures go under ``job_clients``).

Targets (2-core machine, warm: the CDK assembly cached in the state directory, a second run):
<= 150 s wall and <= 12 GiB peak machine memory for 100 devices. The memory regression guard: the
median device (core + inference component) RSS must stay under ``--max-device-rss-mb``; over it the
benchmark exits 1. ``--quick`` is ``--devices 20 --canary 2``.
Prints a table and writes JSON (default bench/results/fleet.json).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# bench/ holds local_cloud.py (another benchmark): it must not shadow the local_cloud package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import psutil  # noqa: E402 - after the path fix above

TARGET_WALL_S = 150.0
TARGET_PEAK_GIB = 12.0
#: Median RSS of one device (core + inference component); before issue 12 it was ~146 MB.
MAX_DEVICE_RSS_MB = 140.0
MIB = 1 << 20


def machine_used() -> int:
    """Bytes in use on the whole machine: MemTotal - MemAvailable."""
    fields = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, value = line.split(":", 1)
            fields[key] = int(value.split()[0]) * 1024
    return fields["MemTotal"] - fields["MemAvailable"]


def _kind(proc: psutil.Process) -> str | None:
    """``core`` or ``inference`` for a device's process, else None."""
    with contextlib.suppress(psutil.Error):
        cmd = proc.cmdline()
        if "--thing" in cmd and ("edge_runtime.core" in cmd or ("device" in cmd and "run" in cmd)):
            return "core"
        if "inference_component" in cmd and "serve" in cmd:
            return "inference"
    return None


def cloud_processes(root: psutil.Process) -> dict[str, psutil.Process]:
    """The local cloud's endpoint and broker under ``root``, by name."""
    found: dict[str, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        for proc in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(proc.cmdline())
                if "local_cloud serve" in cmd:
                    found["endpoint"] = proc
                elif "mosquitto" in cmd:
                    found["broker"] = proc
    return found


def device_processes(root: psutil.Process) -> list[tuple[str, psutil.Process]]:
    """(kind, process) for every core and inference component under ``root``."""
    with contextlib.suppress(psutil.Error):
        return [(k, p) for p in root.children(recursive=True) if (k := _kind(p))]
    return []


class Sampler(threading.Thread):
    """Machine memory every 0.5 s, the device processes' RSS sum every 2 s, until stopped."""

    def __init__(self, root: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop_event = threading.Event()
        self.baseline = machine_used()
        self.peak = self.baseline
        self.peak_devices_rss = 0
        #: Peak open files and threads of the endpoint and the broker (100+ devices connected).
        self.cloud_peaks: dict[str, int] = {}
        self.timeline: list[dict[str, float]] = []
        self.started = time.perf_counter()

    def run(self) -> None:
        tick = 0
        while not self.stop_event.wait(0.5):
            used = machine_used()
            self.peak = max(self.peak, used)
            tick += 1
            if tick % 4:
                continue
            procs = device_processes(self.root)
            rss = 0
            for _, proc in procs:
                with contextlib.suppress(psutil.Error):
                    rss += proc.memory_info().rss
            self.peak_devices_rss = max(self.peak_devices_rss, rss)
            for name, proc in cloud_processes(self.root).items():
                with contextlib.suppress(psutil.Error):
                    for key, value in (("fds", proc.num_fds()), ("threads", proc.num_threads())):
                        self.cloud_peaks[f"{name}_{key}"] = max(
                            self.cloud_peaks.get(f"{name}_{key}", 0), value
                        )
            self.timeline.append(
                {
                    "t_s": round(time.perf_counter() - self.started, 1),
                    "machine_used_gib": round(used / (1 << 30), 2),
                    "devices_rss_gib": round(rss / (1 << 30), 2),
                    "cores": sum(k == "core" for k, _ in procs),
                    "inference": sum(k == "inference" for k, _ in procs),
                }
            )


def warm_sample(root: psutil.Process) -> dict[str, Any]:
    """RSS/PSS/USS (MiB) of each device's core and inference component, and their sums."""
    rows: dict[str, list[dict[str, float]]] = {"core": [], "inference": []}
    for kind, proc in device_processes(root):
        with contextlib.suppress(psutil.Error):
            full = proc.memory_full_info()
            rows[kind].append(
                {
                    "rss": full.rss / MIB,
                    "pss": full.pss / MIB,
                    "uss": full.uss / MIB,
                    "threads": proc.num_threads(),
                }
            )
    out: dict[str, Any] = {"cores": len(rows["core"]), "inference_components": len(rows["inference"])}
    for kind, items in rows.items():
        for metric in ("rss", "pss", "uss", "threads"):
            values = [i[metric] for i in items] or [0.0]
            out[f"{kind}_{metric}_median"] = round(statistics.median(values), 1)
            out[f"{kind}_{metric}_max"] = round(max(values), 1)
            out[f"{kind}_{metric}_sum_mib"] = round(sum(values), 1)
    out["device_rss_median_mb"] = round(out["core_rss_median"] + out["inference_rss_median"], 1)
    out["device_pss_median_mb"] = round(out["core_pss_median"] + out["inference_pss_median"], 1)
    out["device_uss_median_mb"] = round(out["core_uss_median"] + out["inference_uss_median"], 1)
    out["devices_pss_sum_gib"] = round((out["core_pss_sum_mib"] + out["inference_pss_sum_mib"]) / 1024, 2)
    out["devices_rss_sum_gib"] = round((out["core_rss_sum_mib"] + out["inference_rss_sum_mib"]) / 1024, 2)
    return out


def run_fleet(devices: int, canary: int, state_dir: Path, timeout_s: float) -> dict[str, Any]:
    """One ``mlops-edge run`` with the fleet; returns its figures (see the module's docstring)."""
    warm = (state_dir / "cache").exists()
    report = state_dir / f"bench-fleet-{devices}.json"
    report.unlink(missing_ok=True)
    log_path = state_dir / f"bench-fleet-{devices}.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "mlops_edge.main", "run",
        "--devices", str(devices), "--canary", str(canary),
        "--state-dir", str(state_dir), "--report", str(report),
        "--timeout", str(timeout_s), "--keep",
    ]  # fmt: skip
    load_before = os.getloadavg()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    sampler = Sampler(root)
    sampler.start()
    started = time.perf_counter()
    sample: dict[str, Any] = {}
    try:
        while not report.exists() and proc.poll() is None:
            if time.perf_counter() - started > timeout_s + 120:
                break
            time.sleep(0.25)
        wall = time.perf_counter() - started
        if report.exists():
            time.sleep(1.0)  # the report's .md and summary are written right after the JSON
            sample = warm_sample(root)
            # --keep then starts the web console: interrupting that start would leave it behind
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if "the environment is running" in log_path.read_text(errors="replace"):
                    break
                time.sleep(0.25)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # the run stops what it started, by PID
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sampler.stop_event.set()
        sampler.join()
    result = json.loads(report.read_text()) if report.exists() else {}
    # others editing the app's sources between the untimed synthesis and the run re-synthesize it
    synth = re.search(r"synthesized in ([0-9.]+) s", log_path.read_text(errors="replace"))
    return {
        "devices": devices,
        "canary": canary,
        "warm": warm,
        "status": result.get("status", f"no report (exit {proc.returncode}, see {log_path})"),
        "wall_s": round(wall, 1),
        "synthesis_in_run_s": float(synth.group(1)) if synth else 0.0,
        "timings_s": result.get("timings_s", {}),
        "stages": result.get("stages"),
        "total_s": result.get("total_s"),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine_used_baseline_gib": round(sampler.baseline / (1 << 30), 2),
        "machine_used_peak_gib": round(sampler.peak / (1 << 30), 2),
        "machine_used_peak_delta_gib": round((sampler.peak - sampler.baseline) / (1 << 30), 2),
        "devices_rss_peak_gib": round(sampler.peak_devices_rss / (1 << 30), 2),
        "cloud_peaks": sampler.cloud_peaks,
        "devices_running_at_s": next((t["t_s"] for t in sampler.timeline if t["cores"] >= devices), None),
        "per_device": sample,
        "timeline": sampler.timeline,
        "log": str(log_path),
    }


def job_clients(skip: bool) -> dict[str, Any] | None:
    """The 1,000 job clients part, by ``bench.fleet_jobs.run()`` (another benchmark's module)."""
    if skip:
        return {"skipped": "--skip-job-clients"}
    if importlib.util.find_spec("bench.fleet_jobs") is None:
        return {"skipped": "bench/fleet_jobs.py is not there yet"}
    from bench import fleet_jobs  # type: ignore[attr-defined]

    return fleet_jobs.run()


def warm_up(state_dir: Path) -> None:
    """One 1-device run in the state directory: the CDK assembly is synthesized and cached."""
    cmd = [sys.executable, "-m", "mlops_edge.main", "run", "--devices", "1", "--state-dir", str(state_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"the warm-up run failed with exit {proc.returncode}")


def print_table(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    run, dev = out["fleet"], out["fleet"]["per_device"]
    table = Table("figure", "value", "target", title=f"{run['devices']} devices, canary {run['canary']}")
    table.add_row("status", str(run["status"]), "SUCCEEDED")
    table.add_row("wall time (s)", f"{run['wall_s']:.1f}", f"<= {TARGET_WALL_S:.0f}")
    if run["synthesis_in_run_s"]:
        table.add_row(
            "  of which a CDK synthesis (sources changed meanwhile)", f"{run['synthesis_in_run_s']:.1f}", ""
        )
    table.add_row(
        "machine used, peak (GiB)", f"{run['machine_used_peak_gib']:.2f}", f"<= {TARGET_PEAK_GIB:.0f}"
    )
    table.add_row("machine used, before the run (GiB)", f"{run['machine_used_baseline_gib']:.2f}", "")
    table.add_row("machine used, peak - before (GiB)", f"{run['machine_used_peak_delta_gib']:.2f}", "")
    table.add_row("every core connected at (s)", str(run["devices_running_at_s"]), "")
    table.add_row("device processes' RSS sum, peak (GiB)", f"{run['devices_rss_peak_gib']:.2f}", "")
    if dev:
        table.add_row("device processes' PSS sum, warm (GiB)", f"{dev['devices_pss_sum_gib']:.2f}", "")
        for kind in ("core", "inference"):
            table.add_row(
                f"{kind}: RSS / PSS / USS median (MiB)",
                f"{dev[f'{kind}_rss_median']:.0f} / {dev[f'{kind}_pss_median']:.0f} / {dev[f'{kind}_uss_median']:.0f}",
                "",
            )
        table.add_row("device (core + inference) RSS median (MiB)", f"{dev['device_rss_median_mb']:.0f}",
                      f"<= {out['max_device_rss_mb']:.0f}")  # fmt: skip
    for stage in run.get("stages") or []:
        table.add_row(
            f"stage {stage['name']} ({stage['thing_group']})",
            f"{stage['status']}: {stage['succeeded']}/{stage['targeted']} succeeded, "
            f"{stage['verified']} verified, {stage['seconds']} s",
            "",
        )
    peaks = run["cloud_peaks"]
    table.add_row(
        "endpoint fds / threads, broker fds (peak)",
        f"{peaks.get('endpoint_fds')} / {peaks.get('endpoint_threads')}, {peaks.get('broker_fds')}",
        "",
    )
    table.add_row(
        "load average before / after", f"{run['load_average_before'][0]} / {run['load_average_after'][0]}", ""
    )
    Console().print(table)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--canary", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="--devices 20 --canary 2")
    parser.add_argument("--state-dir", type=Path, default=Path(".local/bench-fleet"))
    parser.add_argument("--no-warmup", action="store_true", help="measure even without a cached assembly")
    parser.add_argument("--timeout", type=float, default=900.0, help="the run's --timeout (s)")
    parser.add_argument("--max-device-rss-mb", type=float, default=MAX_DEVICE_RSS_MB)
    parser.add_argument("--skip-job-clients", action="store_true")
    parser.add_argument("--json", type=Path, default=_HERE / "results" / "fleet.json")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.canary = 20, 2
    state_dir = args.state_dir.resolve()
    if not (state_dir / "cache").exists() and not args.no_warmup:
        print(f"warm-up: a 1-device run in {state_dir} (a new state directory)", flush=True)
        warm_up(state_dir)
    if not args.no_warmup:  # warm: the assembly of the current sources, not timed
        from mlops_edge.environment.assembly import synthesize

        synth = synthesize(state_dir / "cache")
        print(f"assembly {'cached' if synth.cached else 'synthesized'} in {synth.seconds:.1f} s (not timed)")
    print(
        f"run: mlops-edge run --devices {args.devices} --canary {args.canary} (log in {state_dir})",
        flush=True,
    )
    fleet = run_fleet(args.devices, args.canary, state_dir, args.timeout)
    out: dict[str, Any] = {
        "fleet": fleet,
        "targets": {"wall_s": TARGET_WALL_S, "machine_used_peak_gib": TARGET_PEAK_GIB},
        "max_device_rss_mb": args.max_device_rss_mb,
        "cpus": os.cpu_count(),
        "machine_memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
    }
    print_table(out)
    out["job_clients"] = job_clients(args.skip_job_clients)
    rss = fleet["per_device"].get("device_rss_median_mb")
    out["within_target"] = {
        "wall_s": fleet["wall_s"] <= TARGET_WALL_S,
        "machine_used_peak_gib": fleet["machine_used_peak_gib"] <= TARGET_PEAK_GIB,
        "device_rss": rss is not None and rss <= args.max_device_rss_mb,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")
    if fleet["status"] != "SUCCEEDED":
        print(f"the run did not succeed: {fleet['status']} (see {fleet['log']})", file=sys.stderr)
        return 1
    if not out["within_target"]["device_rss"]:
        print(
            f"memory regression: a device's median RSS is {rss} MiB, over {args.max_device_rss_mb}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
