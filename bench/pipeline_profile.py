"""Where a warm `mlops-edge run`'s wall time goes (``bench/pipeline.py --profile``).

Runs what ``./scripts/run`` runs (``scripts/setup``, then ``.venv/bin/mlops-edge run`` with its
defaults: 1 device, the bundled dataset) in a private state directory, after one warm-up run, and
splits the measured run's wall time:

- outside the states, from the time each line of the run's own output arrived (the run logs each
  step as it finishes: its first line, "local cloud at … (up in N s)", the deploy's lines, the
  devices'; the dataset's lines come from threads beside them and are listed apart), from the endpoint's log (``providers built at``, ``broker up at``, ``ready in``) and
  from ``LocalCloud.startup_seconds``; the set-up check is timed around ``scripts/setup``;
- inside them, from the execution's history (``GetExecutionHistory`` timestamps, read after the
  run from the state directory's local cloud, started again): per state the time and visits, per
  state type the total (Task = time in the Lambda or service call, Wait = time waiting in poll
  loops), the polls, and the training job's own start/end (``DescribeTrainingJob``).

Prints the tables and writes JSON (``bench/results/pipeline_profile.json`` unless ``--json``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "bench" / "results" / "pipeline_profile.json"
#: lines of the run's output that end a step outside the states, in the order they appear
MILESTONES: list[tuple[str, str]] = [
    ("first line on the terminal (imports)", r"^run \S+: "),
    ("local cloud start (endpoint + broker)", r"^local cloud at "),
    ("CDK synthesis / cache check", r"^deploy: assembly "),
    ("CDK assets published", r"^deploy: published "),
    ("CloudFormation deploy (skipped when unchanged)", r"^deploy: stack "),
    ("verifier secret", r"^deploy: verifier certificate"),
    ("to the devices' start (dataset joined)", r"^devices: .*starting in"),
    ("device start (cores connected; dataset upload beside)", r"^devices (\d+)/\1 running"),
    ("devices reported", r"^devices: all \d+ reported"),
]
#: lines of steps that run beside the milestones (a thread), reported with the second they ended
BESIDE: list[tuple[str, str]] = [
    ("demo dataset written (thread, beside cloud start and deploy)", r"^dataset: \S+ \("),
    ("dataset uploaded (thread, beside device start)", r"^dataset: also at "),
]
_ENDPOINT = {
    "providers_built_s": r"providers built at \+([\d.]+)s",
    "broker_up_s": r"broker up at \+([\d.]+)s",
    "ready_s": r"ready in ([\d.]+)s",
    "moto_restored_s": r"moto state restored at \+([\d.]+)s",
    "open_s": r"open \(state restored, providers started\) at \+([\d.]+)s",
}


def run_logged(cmd: list[str], cwd: Path) -> tuple[int, float, list[tuple[float, str]]]:
    """Run ``cmd``; each output line with the wall-clock second it arrived (``time.time()``)."""
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.time(), line.rstrip("\n")))
    return proc.wait(), started, lines


def outside_phases(started: float, lines: list[tuple[float, str]], ended: float) -> list[dict[str, Any]]:
    """Each milestone's interval from the previous one (the first from the command's start)."""
    phases, last = [], started
    for label, pattern in MILESTONES:
        hit = next((t for t, text in lines if re.search(pattern, text.strip())), None)
        if hit is None:
            continue
        phases.append({"phase": label, "s": round(hit - last, 2), "at_s": round(hit - started, 2)})
        last = hit
    return phases


def beside_steps(started: float, lines: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """When each step that overlaps the milestones ended (seconds from the command's start)."""
    found = []
    for label, pattern in BESIDE:
        hit = next((t for t, text in lines if re.search(pattern, text.strip())), None)
        if hit is not None:
            found.append({"phase": label, "at_s": round(hit - started, 2)})
    return found


def endpoint_figures(log: Path) -> dict[str, float]:
    """The last start-up of the endpoint log: moto + providers, broker, ready (seconds from start)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    block = text[text.rfind("providers built at") :] if "providers built at" in text else ""
    out = {}
    for key, pattern in _ENDPOINT.items():
        match = re.search(pattern, block)
        if match:
            out[key] = float(match.group(1))
    return out


def _kind(event_type: str) -> str:
    return event_type.removesuffix("StateEntered").removesuffix("StateExited")


def inside_states(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Per state and per state type, from the history's StateEntered/StateExited timestamps."""
    per_state: dict[str, dict[str, Any]] = defaultdict(lambda: {"type": "", "visits": 0, "s": 0.0})
    open_: dict[str, float] = {}
    start = end = None
    for event in sorted(events, key=lambda e: e["id"]):
        stamp, etype = event["timestamp"].timestamp(), event["type"]
        if etype == "ExecutionStarted":
            start = stamp
        elif etype.startswith("Execution") and etype != "ExecutionStarted":
            end = stamp
        if etype.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            open_[name] = stamp
            per_state[name]["type"] = _kind(etype)
            per_state[name]["visits"] += 1
        elif etype.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_:
                per_state[name]["s"] += stamp - open_.pop(name)
    by_type: dict[str, float] = defaultdict(float)
    for row in per_state.values():
        if row["type"] not in ("Map", "Parallel"):  # their inner states are counted already
            by_type[row["type"]] += row["s"]
    polls = {name: row["visits"] for name, row in per_state.items() if row["type"] == "Wait"}
    return {
        "execution_s": round((end or 0) - (start or 0), 2),
        "execution_started": start,
        "execution_ended": end,
        "states": {k: {**v, "s": round(v["s"], 2)} for k, v in per_state.items()},
        "by_type_s": {k: round(v, 2) for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])},
        "polls": polls,
    }


def read_back(state_dir: Path, execution_arn: str) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """The execution's history and the training jobs, from the run's local cloud started again."""
    sys.path.insert(0, str(ROOT))
    from local_cloud import LocalCloud

    with LocalCloud(state_dir / "cloud") as cloud:
        sfn = cloud.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        sm = cloud.client("sagemaker")
        jobs = sm.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
        training: dict[str, Any] = {}
        for summary in jobs.get("TrainingJobSummaries", []):
            job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            began, ended = job.get("TrainingStartTime"), job.get("TrainingEndTime")
            training = {
                "job": summary["TrainingJobName"],
                "created_to_end_s": round((ended - job["CreationTime"]).total_seconds(), 2)
                if ended
                else None,
                "training_s": round((ended - began).total_seconds(), 2) if began and ended else None,
            }
        return events, training, cloud.startup_seconds


def _loadavg() -> str:
    """/proc/loadavg's 1, 5 and 15 minute figures (other work on the machine skews every figure)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def profile(workdir: Path, warmup: bool, cdk_out: Path | None = None) -> dict[str, Any]:
    """One warm run as ./scripts/run runs it, split into phases (see the module docstring)."""
    exe = str(Path(sys.executable).with_name("mlops-edge"))
    state = workdir / "state"
    report = workdir / "report.json"
    run = [exe, "run", "--state-dir", str(state), "--report", str(report)]
    if cdk_out is not None:
        run += ["--cdk-out", str(cdk_out.resolve())]
    if warmup:
        code, _, lines = run_logged(run, ROOT)
        if code != 0:
            raise SystemExit("warm-up run failed:\n" + "\n".join(t for _, t in lines[-40:]))
    t = time.time()
    subprocess.run([str(ROOT / "scripts" / "setup")], cwd=ROOT, check=True, capture_output=True)
    setup_s = time.time() - t
    load_before = _loadavg()
    code, started, lines = run_logged(run, ROOT)
    ended = time.time()
    if code != 0:
        raise SystemExit(f"measured run failed ({code}):\n" + "\n".join(t for _, t in lines[-40:]))
    doc = json.loads(report.read_text())
    endpoint = endpoint_figures(state / "cloud" / "endpoint.log")
    events, training, restart_s = read_back(state, doc["execution_arn"])
    inside = inside_states(events)
    outside = outside_phases(started, lines, ended)
    last = started + outside[-1]["at_s"] if outside else started
    outside.append(
        {"phase": "upload dataset + StartExecution", "s": round(inside["execution_started"] - last, 2)}
    )
    outside.append({"phase": "execution (inside the states)", "s": inside["execution_s"]})
    last_line = lines[-1][0] if lines else ended
    outside.append(
        {"phase": "follow's end, logs, summary, report", "s": round(last_line - inside["execution_ended"], 2)}
    )
    outside.append({"phase": "stop (devices, endpoint, workers, broker)", "s": round(ended - last_line, 2)})
    return {
        "setup_check_s": round(setup_s, 2),
        "run_wall_s": round(ended - started, 2),
        "first_line_s": round(lines[0][0] - started, 2) if lines else None,
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "outside": outside,
        "beside": beside_steps(started, lines),
        "endpoint_start": endpoint,
        "local_cloud_restart_s": round(restart_s, 2),
        "inside": {k: v for k, v in inside.items() if not k.startswith("execution_") or k == "execution_s"},
        "training_job": training,
        "timeline": [(round(t - started, 2), text) for t, text in lines],
    }


def print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table("phase", "s", "at (s)", title="outside the states (measured run)")
    table.add_row("scripts/setup (nothing to do)", f"{result['setup_check_s']:.2f}", "")
    for row in result["outside"]:
        table.add_row(row["phase"], f"{row['s']:.2f}", f"{row.get('at_s', ''):}")
    table.add_row("[bold]run wall[/bold]", f"[bold]{result['run_wall_s']:.2f}[/bold]", "")
    console.print(table)
    for row in result.get("beside", []):
        console.print(f"beside: {row['phase']} at {row['at_s']:.2f} s")
    console.print(
        f"first line on the terminal at {result.get('first_line_s')} s; "
        f"load average before {result.get('loadavg_before')}, after {result.get('loadavg_after')}"
    )
    ep = result["endpoint_start"]
    console.print(
        "endpoint start-up (its log): moto + providers built "
        f"{ep.get('providers_built_s', float('nan')):.2f} s, broker up {ep.get('broker_up_s', float('nan')):.2f} s, "
        f"ready {ep.get('ready_s', float('nan')):.2f} s, saved state restored "
        f"{ep.get('moto_restored_s', float('nan')):.2f} s, open to requests {ep.get('open_s', float('nan')):.2f} s; "
        "LocalCloud.start again afterwards "
        f"{result['local_cloud_restart_s']:.2f} s"
    )
    inside = result["inside"]
    states = Table("state", "type", "visits", "s", title=f"inside the states ({inside['execution_s']:.2f} s)")
    for name, row in sorted(inside["states"].items(), key=lambda kv: -kv[1]["s"]):
        states.add_row(name, row["type"], str(row["visits"]), f"{row['s']:.2f}")
    console.print(states)
    console.print(f"by state type (s): {inside['by_type_s']}; polls (Wait visits): {inside['polls']}")
    console.print(f"training job: {result['training_job']}")
