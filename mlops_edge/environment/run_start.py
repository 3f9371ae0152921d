"""`mlops-edge run`'s start: the first line, the dataset and the environment, overlapped.

What does not depend on each other overlaps (issue 15 §1): the first line is printed before
anything heavy is imported; the bundled demo dataset (which cannot be invalid) is written in a
thread while the local cloud starts and the stack deploys (a user's CSV is still checked before
anything starts); the dataset is uploaded, and the endpoint's Step Functions interpreter loaded,
while the devices start. :mod:`mlops_edge.environment.runner` runs the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_edge.environment.run_data import RunData
from mlops_edge.environment.run_options import RunError, RunOptions, check_input

if TYPE_CHECKING:
    from rich.console import Console

    from mlops_edge.environment.local_env import LocalEnvironment

__all__ = [
    "DATASET_OUTPUT",
    "first_line",
    "prepared",
    "put_default_dataset",
    "set_up",
    "upload_dataset",
]


def prepare_data(options: RunOptions, work: Path) -> RunData:
    """The bundled demo written as CSVs, or the user's CSV checked and split; a bad one is a
    :class:`RunError` naming the problem."""
    from mlops_edge.environment.run_data import demo_data, user_data
    from pipeline.ml.exceptions import InvalidDataset

    try:
        if options.data is not None:
            assert options.target is not None
            return user_data(options.data, target=options.target, task=options.task, out_dir=work)
        return demo_data(options.demo, work)
    except InvalidDataset as exc:
        raise RunError(str(exc)) from exc


def first_line(options: RunOptions, name: str, state_dir: Path) -> str:
    """What the run is about to do, printed before any heavy import (the first line within 1 s)."""
    if options.model_package_arn:
        what = f"model package {options.model_package_arn}"
    elif options.data is not None:
        what = f"dataset {options.data} (target {options.target!r})"
    else:
        what = f"bundled dataset {options.demo}"
    devices = f"{options.devices} device{'s' if options.devices != 1 else ''}"
    return f"run {name}: {what}, {devices}, state in {state_dir}"


def prepared(options: RunOptions, run_dir: Path, console: Console) -> RunData | None:
    """The run's dataset written, checked with the execution input, and named on the console."""
    if options.model_package_arn:
        return None
    data = prepare_data(options, run_dir / "data")
    check_input(options, data)
    console.print(f"dataset: {data.name} ({data.task}, target {data.target!r})")
    return data


def upload_beside(background: ThreadPoolExecutor, local: LocalEnvironment, data: RunData) -> Future[Any]:
    """:func:`upload_dataset` in ``background`` while the devices start (its S3 client is made
    here, in this thread: making clients from one boto3 session is not thread-safe)."""
    from pipeline.aws import client

    s3 = client("s3")
    return background.submit(upload_dataset, local, data, s3)


def set_up(
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
    uploading = None if data is None else upload_beside(background, local, data)
    warm_step_functions(background, local)
    local.start_devices(options.devices, faulty=faulty)
    dataset = None if uploading is None else uploading.result()
    local.wait_devices()
    return data, dataset


def warm_step_functions(background: ThreadPoolExecutor, local: LocalEnvironment) -> None:
    """One DescribeStateMachine beside the device start: the endpoint's first Step Functions
    request pays its interpreter's loading, which StartExecution would otherwise wait for. Its
    answer does not matter; an error here is StartExecution's to report."""
    from pipeline.aws import client

    assert local.pipeline is not None
    sfn, arn = client("stepfunctions"), local.pipeline.state_machine_arn

    def describe() -> None:
        with contextlib.suppress(Exception):
            sfn.describe_state_machine(stateMachineArn=arn)

    background.submit(describe)


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
