"""The plain (non-terminal) live view: one line per state, poll loops folded into one line."""

from __future__ import annotations

from rich.console import Console

from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.live import PlainView, make_view

from .test_history import History


def _lines(events: list[dict]) -> list[str]:
    console = Console(record=True, width=200, force_terminal=False)
    progress = ExecutionProgress()
    with PlainView(console) as view:
        for event in events:  # one poll per event: the worst case for duplicate lines
            view.update(progress, progress.feed([event]))
        view.devices({"t1": "IN_PROGRESS"})
        view.devices({"t1": "IN_PROGRESS"})
        view.devices({"t1": "SUCCEEDED"})
    return console.export_text().splitlines()


def test_poll_loop_prints_one_done_line_with_its_count() -> None:
    h = History().enter("Task", "Configure", 0).exit("Task", "Configure", 1)
    for i in range(4):
        h.enter("Wait", "WaitTraining", 1 + 2 * i).exit("Wait", "WaitTraining", 2 + 2 * i)
        h.enter("Task", "DescribeTraining", 2 + 2 * i).exit("Task", "DescribeTraining", 2.5 + 2 * i)
    h.enter("Task", "ExportOnnx", 10).exit("Task", "ExportOnnx", 12)
    lines = _lines(h.events)
    assert [line for line in lines if "DescribeTraining" in line] == [
        "▶ DescribeTraining",
        "✔ DescribeTraining 2.0s (4 polls)",
    ]
    assert "✔ ExportOnnx 2.0s" in lines
    assert lines.count("  device t1: IN_PROGRESS") == 1 and "  device t1: SUCCEEDED" in lines


def test_failures_and_retries_are_shown() -> None:
    h = History().enter("Task", "Deploy", 0).add("LambdaFunctionScheduled", 0)
    h.add(
        "LambdaFunctionFailed",
        1,
        lambdaFunctionFailedEventDetails={"error": "TransientError", "cause": "busy"},
    )
    h.add("LambdaFunctionScheduled", 2)
    h.add(
        "LambdaFunctionFailed",
        3,
        lambdaFunctionFailedEventDetails={"error": "DeploymentFailed", "cause": "no"},
    )
    lines = _lines(h.events)
    assert "✖ Deploy: TransientError: busy" in lines
    assert "↻ Deploy retry 1" in lines
    assert "✖ Deploy: DeploymentFailed: no" in lines


def test_make_view_degrades_to_plain_lines_off_a_terminal() -> None:
    assert isinstance(make_view(Console(force_terminal=False), "x"), PlainView)
