"""When a part of the local environment dies during ``mlops-edge run``: the :class:`Watch` that
notices it while the execution is followed, and the ERROR report that names the part and its log."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from mlops_edge.environment.run_options import RunOptions

if TYPE_CHECKING:
    from mlops_edge.environment.local_env import LocalEnvironment
    from mlops_edge.report.history import ExecutionProgress

__all__ = ["ENVIRONMENT_ERROR_EXIT", "EnvironmentDiedType", "Watch", "environment_error"]

#: Exit code of a run that a part of the local environment ended (report status ERROR).
ENVIRONMENT_ERROR_EXIT = 3


class Watch:
    """What the run knows while it follows the execution, for a report when the environment dies:
    the execution's ARN, its last progress; and the liveness check the follow loop runs each poll."""

    def __init__(self, local: LocalEnvironment) -> None:
        self.local = local
        self.execution_arn: str | None = None
        self.progress: ExecutionProgress | None = None

    def dead_part(self, *, grace_s: float = 0.0) -> Any:
        """The dead part, waiting up to ``grace_s`` for a process whose connections already
        failed to be seen gone (a killed process closes its sockets before it is reaped)."""
        deadline = time.monotonic() + grace_s
        while True:
            died = self.local.dead_part()
            if died is not None or time.monotonic() >= deadline:
                return died
            time.sleep(0.1)

    def poller(self, inner: Any) -> Any:
        """``inner`` (a device poller) preceded by the liveness check: a dead endpoint, broker or
        device ends the follow within a poll, as :class:`EnvironmentDied`."""

        def poll(progress: ExecutionProgress) -> Any:
            self.progress = progress
            self.local.check_alive()
            return inner(progress)

        return poll


def environment_error(
    console: Console,
    local: LocalEnvironment,
    died: Any,
    exc: BaseException,
    watch: Watch,
    *,
    options: RunOptions,
    run_dir: Path,
    total_s: float,
    dataset: dict[str, Any],
) -> dict[str, Any]:
    """A part of the environment died: stop the execution if the endpoint can still be reached,
    write report.json/.md with status ERROR and print the summary naming the part and its log."""
    from mlops_edge.environment.local_env import EnvironmentDied
    from mlops_edge.report.history import ExecutionProgress
    from mlops_edge.report.summary import build_report, print_summary, write_report

    if watch.execution_arn and died.part != "endpoint":
        with contextlib.suppress(Exception):
            from pipeline.aws import client

            client("stepfunctions").stop_execution(
                executionArn=watch.execution_arn, error="EnvironmentFailed", cause=died.describe()
            )
    cause = died.describe()
    if not isinstance(exc, EnvironmentDied):
        cause += f" (the run saw: {type(exc).__name__}: {str(exc)[:300]})"
    report = build_report(
        watch.progress or ExecutionProgress(),
        execution_arn=watch.execution_arn or "",
        things=local.things,
        total_s=total_s,
        dataset=dataset,
        where_to_look={"this run": str(run_dir), **local.where_to_look()},
        environment_failure={
            "part": died.part,
            "pid": died.pid,
            "log": died.log,
            "exit_code": died.exit_code,
            "cause": cause,
        },
    )
    report_path = options.report or run_dir / "report.json"
    md_path = write_report(report, report_path)
    print_summary(console, report)
    console.print(f"report: {report_path} and {md_path}")
    console.print("stopping what this run started")
    return report


def EnvironmentDiedType() -> type[BaseException]:
    from mlops_edge.environment.local_env import EnvironmentDied

    return EnvironmentDied
