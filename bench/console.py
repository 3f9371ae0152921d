"""The console through a real browser: page load to interactive, and a state change to its colour.

- **page load**: navigation start to the page's ready mark (data fetched, graph laid out and
  drawn, ``body[data-ready]``), for the execution list and an execution's detail page (a finished
  execution's whole history and its graph), in headless Debian Chromium driven by Playwright;
- **state → colour**: a running execution's state entered/exited, as its history event's
  timestamp says, to the moment the page's node for that state took the matching colour (a
  MutationObserver in the page notes the time). The execution is a chain of Wait and Pass states
  on the local cloud, so many changes are seen in a short run; the console's path (history read
  twice a second, SSE, DOM) is the same for the pipeline's states.

Goals (issue 11): page load ≤ 500 ms, state → colour ≤ 1 s. Prints a table; ``--json PATH`` writes
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_cloud import LocalCloud
from mlops_edge.environment.console_process import ConsoleProcess
from tests.console.browser import LAUNCH_ARGS, find_chromium

WAITS = 12  # Wait states of one second; each followed by a Pass state


def _machine() -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(WAITS):
        last = i == WAITS - 1
        states[f"Wait{i:02d}"] = {"Type": "Wait", "Seconds": 1, "Next": f"Step{i:02d}"}
        states[f"Step{i:02d}"] = {"Type": "Pass", **({"End": True} if last else {"Next": f"Wait{i + 1:02d}"})}
    return {"StartAt": "Wait00", "States": states}


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 1), "p99": round(p99, 1), "n": len(ordered)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


OBSERVER = """() => {
  window.__colours = [];
  const seen = new Set();
  const watch = new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const r of records) {
      const node = r.target;
      const m = /status-(running|succeeded|failed)/.exec(node.getAttribute('class') || '');
      const key = node.dataset.state + ':' + (m && m[1]);
      if (m && !seen.has(key)) { seen.add(key); window.__colours.push([node.dataset.state, m[1], now]); }
    }
  });
  watch.observe(document.getElementById('graph'), {subtree: true, attributes: true, attributeFilter: ['class']});
}"""


def _state_changes(history: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(state, colour) -> epoch ms of the history event that calls for it."""
    out = {}
    for event in history:
        for key, colour in (
            ("stateEnteredEventDetails", "running"),
            ("stateExitedEventDetails", "succeeded"),
        ):
            if key in event:
                out[(event[key]["name"], colour)] = event["timestamp"].timestamp() * 1000.0
    return out


def _page_loads(page: Any, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        times.append(float(page.evaluate("document.body.dataset.readyMs")))
    return times


def measure(loads: int = 20) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium.path is None:
        raise SystemExit(f"bench/console.py needs a browser: {chromium.reason}")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalCloud(Path(tmp) / "cloud") as cloud:
        sfn = cloud.client("stepfunctions")
        role = cloud.client("iam").create_role(
            RoleName="bench-console",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        machine = sfn.create_state_machine(
            name="bench-console", definition=json.dumps(_machine()), roleArn=role
        )
        arn = machine["stateMachineArn"]
        env = {**os.environ, **cloud.env()}
        console = ConsoleProcess(
            Path(tmp) / "console.json", env=env, port=_free_port(), args=["--state-machine", arn]
        )
        url = console.start(log=Path(tmp) / "console.log")
        base, _, _ = url.partition("/executions?")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium.path, args=LAUNCH_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)  # the token for a cookie, once
                page.wait_for_selector("body[data-ready=true]")
                # a running execution, watched from its first event
                started = sfn.start_execution(stateMachineArn=arn, name="bench-live", input="{}")[
                    "executionArn"
                ]
                page.goto(f"{base}/executions/{started}")
                page.wait_for_selector("body[data-ready=true]")
                page.evaluate(OBSERVER)
                page.wait_for_selector("#execution-status >> text=SUCCEEDED", timeout=120_000)
                page.wait_for_timeout(1500)
                colours = page.evaluate("window.__colours")
                history = sfn.get_execution_history(executionArn=started, maxResults=1000)["events"]
                wanted = _state_changes(history)
                lags = [
                    at - wanted[(state, colour)] for state, colour, at in colours if (state, colour) in wanted
                ]
                figures["state_to_colour_ms"] = _percentiles(lags)
                shown = {(s, c) for s, c, _ in colours}
                # a state entered and exited within one read of the history goes straight to its
                # final colour: its "running" was superseded, not missed
                figures["running_superseded"] = sum(
                    1
                    for s, c in wanted
                    if c == "running" and (s, c) not in shown and (s, "succeeded") in shown
                )
                figures["final_colours_missed"] = sum(
                    1 for s, c in wanted if c == "succeeded" and (s, c) not in shown
                )
                figures["page_load_list_ms"] = _percentiles(_page_loads(page, f"{base}/executions", loads))
                figures["page_load_execution_ms"] = _percentiles(
                    _page_loads(page, f"{base}/executions/{started}", loads)
                )
                browser.close()
        finally:
            console.stop()
    figures["goals"] = {"page_load_ms": 500, "state_to_colour_ms": 1000}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--loads", type=int, default=20, help="page loads per page")
    args = parser.parse_args()
    figures = measure(args.loads)
    for name, value in figures.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
        print(f"{name:24} {shown}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
