"""`mlops-edge run`: the whole pipeline on the embedded local cloud, followed live, then reported.

Order matters for "nothing half-done": options and the dataset are checked before anything starts;
whatever was started (local cloud, devices) is stopped by the environment's context manager, by
PID. The environment (:mod:`mlops_edge.environment.local_env`), following the execution and the
report are separate steps, so each can be used and tested on its own. The options and the execution
input live in :mod:`mlops_edge.environment.run_options`; what happens when a part of the environment
dies, in :mod:`mlops_edge.environment.run_failure` (both re-exported here).

Its start (first line, dataset, environment; what can overlap does) is
:mod:`mlops_edge.environment.run_start`.
"""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_edge.environment.run_data import RunData
from mlops_edge.environment.run_failure import (
    ENVIRONMENT_ERROR_EXIT,
    EnvironmentDiedType,
    Watch,
    environment_error,
)
from mlops_edge.environment.run_options import (
    MODEL_PACKAGE_ARN,
    RunError,
    RunOptions,
    check_input,
    execution_input,
)
from mlops_edge.environment.run_start import (
    DATASET_OUTPUT,
    first_line,
    prepared,
    put_default_dataset,
    set_up,
    upload_dataset,
)

if TYPE_CHECKING:
    from rich.console import Console

    from mlops_edge.environment.local_env import LocalEnvironment
    from mlops_edge.report.history import ExecutionProgress

__all__ = [
    "DATASET_OUTPUT",
    "ENVIRONMENT_ERROR_EXIT",
    "MODEL_PACKAGE_ARN",
    "EnvironmentDiedType",
    "RunError",
    "RunOptions",
    "Watch",
    "check_input",
    "execution_input",
    "put_default_dataset",
    "run_pipeline",
    "upload_dataset",
]


def _refuse_a_held_state_dir(state_dir: Path) -> None:
    """Two local clouds on one state directory would overwrite each other's saved state."""
    from mlops_edge.environment.envfile import running

    holder = running(state_dir)
    if holder is not None:
        raise RunError(
            f"{state_dir} is in use by a running local cloud (PID {holder.pid}, {holder.by or 'mlops-edge'}): "
            f"stop it (mlops-edge local stop --state-dir {state_dir}) or give this run another --state-dir"
        )


def run_pipeline(options: RunOptions, console: Console) -> int:
    """Run everything; returns the process exit code (0 only if SUCCEEDED and every device verified)."""
    options.check()
    started = time.perf_counter()
    started_epoch = time.time()
    state_dir = options.state_dir.resolve()
    _refuse_a_held_state_dir(state_dir)
    name = options.name or time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    run_dir = state_dir / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    console.print(first_line(options, name, state_dir))
    # a user's CSV is checked before anything starts; the bundled demo is written meanwhile
    pending: Future[RunData | None] | None = None
    data: RunData | None = None
    if options.data is not None:
        data = prepared(options, run_dir, console)
    else:
        check_input(options, None)  # --hp and the rest, before anything starts
    from mlops_edge.environment.local_env import (
        EnvironmentDied,
        EnvironmentFailed,
        LocalEnvironment,
        sigterm_as_interrupt,
    )

    cdk_out = options.cdk_out.resolve() if options.cdk_out else None
    with (
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="run") as background,
        sigterm_as_interrupt(),
        LocalEnvironment(state_dir, cdk_out=cdk_out, log=console.print) as local,
    ):
        if options.data is None and not options.model_package_arn:
            pending = background.submit(prepared, options, run_dir, console)
        watch = Watch(local)
        try:
            try:
                data, dataset = set_up(options, local, console, background, pending or data)
            except EnvironmentFailed as exc:
                raise RunError(str(exc)) from exc
            arn, progress = _execute(options, local, console, run_dir, dataset, watch)
            report = _report(
                console,
                progress,
                local,
                options=options,
                execution_arn=arn,
                run_dir=run_dir,
                total_s=time.perf_counter() - started,
                started_epoch=started_epoch,
                dataset={"name": data.name if data else None, **(dataset or {})},
            )
            if options.keep:
                local.keep_running(console, example_input=run_dir / "input.json")
            return 0 if report["status"] == "SUCCEEDED" else 1
        except KeyboardInterrupt:
            console.print("interrupted: stopping what this run started")
            return 130
        except Exception as exc:
            # A botocore connection error, a paho error, an EnvironmentDied from the watch: when a
            # process of the environment is gone, that is the cause the user needs, not the trace.
            died = exc.died if isinstance(exc, EnvironmentDied) else watch.dead_part(grace_s=2.0)
            if died is None:
                raise
            environment_error(
                console,
                local,
                died,
                exc,
                watch,
                options=options,
                run_dir=run_dir,
                total_s=time.perf_counter() - started,
                dataset={"name": data.name if data else None},
            )
            return ENVIRONMENT_ERROR_EXIT


def _execute(
    options: RunOptions,
    local: LocalEnvironment,
    console: Console,
    run_dir: Path,
    dataset: dict[str, Any] | None,
    watch: Watch | None = None,
) -> tuple[str, ExecutionProgress]:
    """Start the execution and follow it live until it ends or the run's timeout stops it."""
    from mlops_edge.environment.deploy import python_for_devices
    from mlops_edge.report.follow import follow_execution, greengrass_device_poller
    from mlops_edge.report.live import make_view
    from pipeline.aws import client

    name = run_dir.name
    sfn = client("stepfunctions")
    document = execution_input(options, dataset, python=python_for_devices())
    (run_dir / "input.json").write_text(json.dumps(document, indent=2))
    arn = sfn.start_execution(
        stateMachineArn=local.pipeline.state_machine_arn, name=name, input=json.dumps(document)
    )["executionArn"]
    console.print(f"execution {name} started")
    poller = greengrass_device_poller(client("greengrassv2"), local.things)
    if watch is not None:
        watch.execution_arn = arn
        poller = watch.poller(poller)
    progress = follow_execution(
        sfn,
        arn,
        make_view(console, f"mlops-edge pipeline — {name}"),
        timeout_s=options.timeout_s,
        device_poller=poller,
    )
    if progress.status == "RUNNING":
        sfn.stop_execution(
            executionArn=arn, error="Timeout", cause=f"mlops-edge run --timeout {options.timeout_s}"
        )
        progress.status, progress.error = "TIMED_OUT", "Timeout"
        progress.cause = f"the execution did not finish within {options.timeout_s:.0f} s"
    return arn, progress


def _report(
    console: Console,
    progress: ExecutionProgress,
    local: LocalEnvironment,
    *,
    options: RunOptions,
    execution_arn: str,
    run_dir: Path,
    total_s: float,
    started_epoch: float,
    dataset: dict[str, Any],
) -> dict[str, Any]:
    """Save the Lambda logs, write report.json/.md and print the summary; returns the report."""
    from mlops_edge.report.logs import save_function_logs
    from mlops_edge.report.summary import build_report, manifest_uri, print_summary, write_report
    from pipeline.aws import client

    saved_logs = save_function_logs(
        client("logs"),
        local.pipeline.function_names(),
        start_ms=int(started_epoch * 1000),
        out_dir=run_dir / "logs",
    )
    name = run_dir.name
    failing = progress.failing_state()
    where = {
        "Lambda logs of this run": str(run_dir / "logs"),
        **({"failing state's history": f"mlops-edge executions history {name}"} if failing else {}),
        **local.where_to_look(),
    }
    console.print(f"Lambda logs: {len(saved_logs)} functions saved under {run_dir / 'logs'}", style="dim")
    report = build_report(
        progress,
        execution_arn=execution_arn,
        things=local.things,
        total_s=total_s,
        dataset=dataset,
        where_to_look=where,
        manifest=_read_manifest(client("s3"), manifest_uri(progress)),
    )
    report["iam"] = _iam(local)
    report_path = options.report or run_dir / "report.json"
    md_path = write_report(report, report_path)
    print_summary(console, report)
    console.print(f"report: {report_path} and {md_path}")
    return report


def _iam(local: LocalEnvironment) -> dict[str, Any]:
    """What each function's role and the state machine's role used, left unused, or were refused."""
    from local_cloud.iam import iam_usage
    from local_cloud.iam.enforce import LOG_NAME
    from pipeline.aws import client

    assert local.pipeline is not None
    sfn = client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=local.pipeline.state_machine_arn)
    roles = {**local.pipeline.function_roles, machine["name"]: machine["roleArn"]}
    log = local.cloud.state_dir / LOG_NAME
    usage = iam_usage(log, roles, iam=client("iam")) if log.exists() else {}
    return {"log": str(log), "roles": usage}


def _read_manifest(s3: Any, uri: str | None) -> dict[str, Any] | None:
    """The deployed model's model.json, or None when there is none (or it cannot be read)."""
    from botocore.exceptions import ClientError

    if not uri or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError):
        return None
