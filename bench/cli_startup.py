"""How long the CLI takes before it does anything: `--help`, a sub-command's help, completion.

Usage: ``.venv/bin/python bench/cli_startup.py [--runs N] [--json PATH]``

Each case is a fresh ``mlops-edge`` process (what a user and a shell's completion wait for),
run ``--runs`` times; prints min / median / max wall time and the modules a case must not import,
and writes ``bench/results/cli_startup.json``. Goal (issue 14): ``mlops-edge --help`` under
0.3 s, with no boto3, botocore, rich or ML library imported, a ``mlops-edge.toml`` present or not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
HEAVY = ("boto3", "botocore", "rich", "xgboost", "onnxruntime", "moto", "aws_cdk")
GOAL_S = 0.3
#: name -> (argv after mlops-edge, extra environment)
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "python -c pass (the floor)": (["<python>"], {}),
    "--help": (["--help"], {}),
    "executions list --help": (["executions", "list", "--help"], {}),
    "completion (bash, 'exec')": (
        [],
        {"_MLOPS_EDGE_COMPLETE": "bash_complete", "COMP_WORDS": "mlops-edge exec", "COMP_CWORD": "1"},
    ),
}
_PROBE = (
    "import sys\nfrom mlops_edge.main import main\n"
    "try:\n    main(sys.argv[1:], prog_name='mlops-edge')\nexcept SystemExit:\n    pass\n"
    f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    exe = Path(sys.executable).parent / "mlops-edge"
    command = [sys.executable, "-c", "pass"] if argv == ["<python>"] else [str(exe), *argv]
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False, timeout=60)
    return time.perf_counter() - started


def _heavy(argv: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    line = [x for x in done.stderr.splitlines() if x.startswith("HEAVY=")]
    return [m for m in line[-1][len("HEAVY=") :].split(",") if m] if line else ["<probe failed>"]


def measure(runs: int) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".git").mkdir()
        (project / "mlops-edge.toml").write_text(
            '[default]\nregion = "eu-west-1"\n[executions.list]\nmax = 5\n'
        )
        for config in ("no config", "with mlops-edge.toml"):
            cwd = ROOT if config == "no config" else project
            for name, (argv, extra) in CASES.items():
                env = {**os.environ, **extra}
                _time(argv, env, cwd)  # warm the page cache and bytecode
                times = [_time(argv, env, cwd) for _ in range(runs)]
                results[f"{name} ({config})"] = {
                    "min_s": round(min(times), 4),
                    "median_s": round(statistics.median(times), 4),
                    "max_s": round(max(times), 4),
                    "heavy_imports": [] if argv == ["<python>"] else _heavy(argv, env, cwd),
                }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=RESULTS / "cli_startup.json")
    args = parser.parse_args()
    results = measure(args.runs)
    print(f"{'case':<52} {'min':>7} {'median':>7} {'max':>7}  heavy imports")
    for name, r in results.items():
        heavy = ", ".join(r["heavy_imports"]) or "none"  # type: ignore[arg-type]
        print(f"{name:<52} {r['min_s']:>7.3f} {r['median_s']:>7.3f} {r['max_s']:>7.3f}  {heavy}")
    help_median = results["--help (no config)"]["median_s"]
    verdict = "meets" if float(help_median) < GOAL_S else "MISSES"  # type: ignore[arg-type]
    print(
        f"`mlops-edge --help` median {help_median} s: {verdict} the {GOAL_S} s goal (load: {os.getloadavg()[0]:.1f})"
    )
    document = {
        "goal_help_s": GOAL_S,
        "load_1min": round(os.getloadavg()[0], 2),
        "runs": args.runs,
        "cases": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
