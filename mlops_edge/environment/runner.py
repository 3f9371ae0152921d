"""`mlops-edge run`: the whole pipeline on the embedded local cloud, followed live, then reported.

Order matters for "nothing half-done": options and the dataset are checked before anything starts;
whatever was started (local cloud, devices) is stopped by the environment's context manager, by
PID. The environment (:mod:`mlops_edge.environment.local_env`), following the execution and the
report are separate steps, so each can be used and tested on its own. The options and the execution
input live in :mod:`mlops_edge.environment.run_options`; what happens when a part of the environment
dies, in :mod:`mlops_edge.environment.run_failure` (both re-exported here).

What does not depend on each other overlaps (issue 15 §1): the first line is printed before
anything heavy is imported; the bundled demo dataset (which cannot be invalid) is written in a
thread while the local cloud starts and the stack deploys (a user's CSV is still checked before
anything starts); the dataset is uploaded while the devices start.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
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


def _prepare_data(options: RunOptions, work: Path) -> RunData:
    from mlops_edge.environment.run_data import demo_data, user_data
    from pipeline.ml.exceptions import InvalidDataset

    try:
        if options.data is not None:
            assert options.target is not None
            return user_data(options.data, target=options.target, task=options.task, out_dir=work)
        return demo_data(options.demo, work)
    except InvalidDataset as exc:
        raise RunError(str(exc)) from exc


def _refuse_a_held_state_dir(state_dir: Path) -> None:
    """Two local clouds on one state directory would overwrite each other's saved state."""
    from mlops_edge.environment.envfile import running

    holder = running(state_dir)
    if holder is not None:
        raise RunError(
            f"{state_dir} is in use by a running local cloud (PID {holder.pid}, {holder.by or 'mlops-edge'}): "
            f"stop it (mlops-edge local stop --state-dir {state_dir}) or give this run another --state-dir"
        )


def _first_line(options: RunOptions, name: str, state_dir: Path) -> str:
    """What the run is about to do, printed before any heavy import (the first line within 1 s)."""
    if options.model_package_arn:
        what = f"model package {options.model_package_arn}"
    elif options.data is not None:
        what = f"dataset {options.data} (target {options.target!r})"
    else:
        what = f"bundled dataset {options.demo}"
    devices = f"{options.devices} device{'s' if options.devices != 1 else ''}"
    return f"run {name}: {what}, {devices}, state in {state_dir}"


def _prepared(options: RunOptions, run_dir: Path, console: Console) -> RunData | None:
    """The run's dataset written, checked with the execution input, and named on the console."""
    if options.model_package_arn:
        return None
    data = _prepare_data(options, run_dir / "data")
    check_input(options, data)
    console.print(f"dataset: {data.name} ({data.task}, target {data.target!r})")
    return data


def _upload_beside(background: ThreadPoolExecutor, local: LocalEnvironment, data: RunData) -> Future[Any]:
    """:func:`upload_dataset` in ``background`` while the devices start (its S3 client is made
    here, in this thread: making clients from one boto3 session is not thread-safe)."""
    from pipeline.aws import client

    s3 = client("s3")
    return background.submit(upload_dataset, local, data, s3)


def _set_up(
    options: RunOptions,
    local: LocalEnvironment,
    console: Console,
    background: ThreadPoolExecutor,
    data: RunData | Future[RunData | None] | None,
) -> tuple[RunData | None, dict[str, Any] | None]:
    """Local cloud, stack, devices; the dataset (``data``, or the future writing it) uploaded
    while the devices start. Returns the dataset and the execution input's ``dataset`` section."""
    local.start_cloud()
    local.deploy()  # the stack makes the thing group the devices join
    data = data.result() if isinstance(data, Future) else data
    faulty = options.faulty()
    if faulty:
        console.print(f"fault injection: {', '.join(faulty)} will fail their installs (--fail-devices)")
    if options.canary is not None:
        assert local.pipeline is not None
        console.print(_canary_line(options.canary, local.pipeline.thing_group))
    uploading = None if data is None else _upload_beside(background, local, data)
    local.start_devices(options.devices, faulty=faulty)
    dataset = None if uploading is None else uploading.result()
    local.wait_devices()
    return data, dataset


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
    console.print(_first_line(options, name, state_dir))
    # a user's CSV is checked before anything starts; the bundled demo is written meanwhile
    pending: Future[RunData | None] | None = None
    data: RunData | None = None
    if options.data is not None:
        data = _prepared(options, run_dir, console)
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
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="run") as background,
        sigterm_as_interrupt(),
        LocalEnvironment(state_dir, cdk_out=cdk_out, log=console.print) as local,
    ):
        if options.data is None and not options.model_package_arn:
            pending = background.submit(_prepared, options, run_dir, console)
        watch = Watch(local)
        try:
            try:
                data, dataset = _set_up(options, local, console, background, pending or data)
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


def _canary_line(canary: int, fleet_group: str) -> str:
    """How the pipeline will choose the canaries, as its Deploy handler does (lambdas/core/rollout)."""
    import os

    from pipeline.config.rollout import default_canary_group

    group = default_canary_group(fleet_group, os.environ.get("MLOPS_EDGE_CANARY_THING_GROUP", ""))
    return (
        f"rollout: stage canary = {canary} device(s) of {fleet_group} (those already in {group} "
        f"first, then by name), moved to {group}; then stage fleet = the rest of {fleet_group}"
    )


def upload_dataset(local: LocalEnvironment, data: RunData, s3: Any = None) -> dict[str, Any]:
    """Put the run's CSVs where the execution input will point (the bucket of the deployment), and
    its training CSV under the stack's default dataset (:func:`put_default_dataset`)."""
    from mlops_edge.environment.run_data import upload
    from pipeline.aws import client

    assert local.pipeline is not None
    s3 = s3 if s3 is not None else client("s3")
    dataset = upload(s3, local.pipeline.bucket, data)
    default = put_default_dataset(s3, local.pipeline.stack.outputs, data)
    if default:
        local.log(
            f"dataset: also at {default}, the stack's default dataset, which an execution without "
            "dataset.train trains on (e.g. mlops-edge execute --input pipeline/config/example-input.json)"
        )
    return dataset


#: The pipeline stack's output naming the default training dataset (MLOPS_EDGE_DATASET_URI).
DATASET_OUTPUT = "DatasetUri"


def put_default_dataset(s3: Any, outputs: Mapping[str, str], data: RunData) -> str | None:
    """The run's training CSV at the stack's default dataset URI (a prefix gets ``train.csv``), as
    docs/deploy-aws.md tells an AWS user to upload theirs: an execution that names no dataset (the
    README's example input) then trains on what the last run trained on. Returns the object's URI,
    None when the stack declares no default."""
    uri = outputs.get(DATASET_OUTPUT, "")
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    if not key or key.endswith("/"):
        key += "train.csv"
    s3.upload_file(str(data.train_csv), bucket, key)
    return f"s3://{bucket}/{key}"


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
