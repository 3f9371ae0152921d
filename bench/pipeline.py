"""Wall time of the whole pipeline on the local cloud, with 1 and with 10 simulated devices.

Runs `mlops-edge run` as a user would (a subprocess per run) in one state directory, after one
warm-up run: a warm environment, as on a developer's machine after the first run (imports, the ASL
cache, the registry and the published inference component are there; each measured run still
trains, exports, registers and publishes a new model version, and deploys and verifies it). The
10-device run provisions and starts 9 more devices. Prints a table of per-state and total times and
writes JSON (`--json PATH`).

`--profile`: one warm run as ./scripts/run runs it, with a table of where its wall time goes
outside the states (set-up check, endpoint and broker start, synthesis, deploy, devices) and inside
them (per state, waits, polls, training), from the run's output and the execution's history
(bench/pipeline_profile.py); JSON to bench/results/pipeline_profile.json unless `--json`.

Targets (2-core machine, warm): <= 45 s with 1 device, <= 90 s with 10 devices.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {1: 45.0, 10: 90.0}


def run_once(devices: int, workdir: Path, extra: list[str]) -> dict:
    report = workdir / f"report-{devices}.json"
    cmd = [
        sys.executable, "-m", "mlops_edge.main", "run",
        "--devices", str(devices),
        "--state-dir", str(workdir / "state"),
        "--report", str(report),
        *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not report.exists():
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"mlops-edge run --devices {devices} failed with exit {proc.returncode}")
    data = json.loads(report.read_text())
    return {
        "devices": devices,
        "wall_s": round(wall, 2),
        "status": data["status"],
        "timings_s": data["timings_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--profile", action="store_true", help="where a warm run's wall time goes")
    parser.add_argument(
        "--cdk-out",
        type=Path,
        help="--profile: deploy this synthesized assembly (mlops-edge run --cdk-out), so files edited "
        "between the warm-up and the measured run (a shared checkout) do not make it a cold synth",
    )
    args = parser.parse_args()
    if args.profile:
        _profile(args.json, warmup=not args.no_warmup, cdk_out=args.cdk_out)
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        workdir = Path(tmp)
        if not args.no_warmup:
            console.print("warm-up run (1 device)…")
            run_once(1, workdir, [])
        for n in args.devices:
            console.print(f"run with {n} device(s)…")
            results.append(run_once(n, workdir, []))

    states = list(dict.fromkeys(s for r in results for s in r["timings_s"]))
    table = Table("state", *[f"{r['devices']} device(s)" for r in results], title="wall time per state (s)")
    for state in states:
        table.add_row(state, *[f"{r['timings_s'].get(state, 0):.2f}" for r in results])
    table.add_row("[bold]total (wall)[/bold]", *[f"[bold]{r['wall_s']:.1f}[/bold]" for r in results])
    table.add_row("target", *[f"{TARGETS_S.get(r['devices'], float('nan')):.0f}" for r in results])
    console.print(table)
    out = {
        "runs": results,
        "targets_s": {str(k): v for k, v in TARGETS_S.items()},
        "within_target": {
            str(r["devices"]): r["wall_s"] <= TARGETS_S.get(r["devices"], 1e9) for r in results
        },
    }
    if len(results) >= 2:
        out["ratio_last_to_first"] = round(results[-1]["wall_s"] / results[0]["wall_s"], 2)
        console.print(
            f"ratio {results[-1]['devices']} vs {results[0]['devices']} devices: {out['ratio_last_to_first']}×"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
        console.print(f"wrote {args.json}")


def _profile(json_path: Path | None, warmup: bool, cdk_out: Path | None = None) -> None:
    """``--profile``: the tables of bench/pipeline_profile.py, and its JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pipeline_profile

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-profile-") as tmp:
        result = pipeline_profile.profile(Path(tmp), warmup, cdk_out=cdk_out)
    pipeline_profile.print_tables(result)
    out = json_path or pipeline_profile.DEFAULT_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
