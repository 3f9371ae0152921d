"""`mlops-edge run`: the whole pipeline on the embedded local cloud, followed live, then reported.

Order matters for "nothing half-done": options and the dataset are checked before anything starts;
whatever was started (local cloud, devices) is stopped in ``finally``, by PID.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from mlops_edge.environment.run_data import RunData

MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$")


class RunError(Exception):
    """A problem with the run's options or environment, reported to the user without a traceback."""


@dataclass
class RunOptions:
    devices: int = 1
    demo: str = "diabetes"
    data: Path | None = None
    target: str | None = None
    task: str = "auto"
    model_package_arn: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    state_dir: Path = Path(".local")
    report: Path | None = None
    keep: bool = False
    name: str | None = None
    timeout_s: float = 900.0
    poll_s: int = 1

    def check(self) -> None:
        if self.devices < 1:
            raise RunError("--devices must be at least 1")
        if self.data is not None and not self.target:
            raise RunError("--data needs --target: the name of the column to predict")
        if self.data is not None and not self.data.is_file():
            raise RunError(f"--data {self.data}: no such file")
        if self.model_package_arn and not MODEL_PACKAGE_ARN.match(self.model_package_arn):
            raise RunError(
                f"--model-package {self.model_package_arn!r} is not a model package version ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )


def execution_input(options: RunOptions, dataset: Mapping[str, Any] | None, *, python: str) -> dict[str, Any]:
    """The execution input: the documented schema, with fast polls and the device's interpreter."""
    poll = {"interval_s": options.poll_s}
    document: dict[str, Any] = {
        "comment": "mlops-edge run (local cloud)",
        "components": {"inference_configuration": {"PythonPath": python, "TelemetryIntervalSeconds": 5}},
        "poll": {
            "training": {**poll, "max_polls": 600},
            "components": {**poll, "max_polls": 120},
            "deployment": {**poll, "max_polls": 300},
        },
    }
    if options.hyperparameters:
        document["hyperparameters"] = dict(options.hyperparameters)
    if options.model_package_arn:
        document["model_package_arn"] = options.model_package_arn
    if dataset is not None:
        document["dataset"] = dict(dataset)
    return document


def check_input(options: RunOptions, data: RunData | None) -> None:
    """Validate the execution input against the published schema before anything starts, with
    the same check Configure runs (so ``--hp max_depth=-3`` costs a second, not a whole start-up)."""
    from pipeline.config import InvalidInput, schema, validate

    placeholder = None
    if data is not None:
        placeholder = {"train": "s3://bucket/train.csv", "target": data.target, "task": data.task}
    try:
        validate(execution_input(options, placeholder, python="python3"), schema())
    except InvalidInput as exc:
        raise RunError(str(exc)) from exc


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


def _device_poller(greengrass: Any, things: list[str]):  # -> DevicePoller
    def poll(progress: Any) -> dict[str, str] | None:
        deployment = (progress.output_of("Deploy") or {}).get("deployment") or {}
        deployment_id = deployment.get("deployment_id")
        statuses: dict[str, str] = {}
        for thing in things:
            if not deployment_id:
                statuses[thing] = "waiting for deployment"
                continue
            try:
                effective = greengrass.list_effective_deployments(coreDeviceThingName=thing)
            except ClientError:  # a device not known yet is a status, not an error
                statuses[thing] = "not reported yet"
                continue
            found = [
                e for e in effective.get("effectiveDeployments", []) if e["deploymentId"] == deployment_id
            ]
            if not found:
                statuses[thing] = "QUEUED"
                continue
            e = found[0]
            detailed = (e.get("statusDetails") or {}).get("detailedDeploymentStatus")
            statuses[thing] = e["coreDeviceExecutionStatus"] + (f" ({detailed})" if detailed else "")
        return statuses

    return poll


def run_pipeline(options: RunOptions, console: Console) -> int:
    """Run everything; returns the process exit code (0 only if SUCCEEDED and every device verified)."""
    from local_cloud import LocalCloud
    from mlops_edge.environment.deploy import PipelineNames, deploy_pipeline, python_for_devices
    from mlops_edge.environment.envfile import CLOUD_SUBDIR, STATE_MACHINE_ENV, write_env_file
    from mlops_edge.environment.fleet import Fleet, FleetError
    from mlops_edge.environment.run_data import upload
    from mlops_edge.report.follow import follow_execution
    from mlops_edge.report.live import make_view
    from mlops_edge.report.logs import save_function_logs
    from mlops_edge.report.summary import build_report, manifest_uri, print_summary, write_report
    from pipeline.aws import client

    options.check()
    started = time.perf_counter()
    started_epoch = time.time()
    state_dir = options.state_dir.resolve()
    name = options.name or time.strftime("run-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    run_dir = state_dir / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    data = None if options.model_package_arn else _prepare_data(options, run_dir / "data")
    check_input(options, data)
    if data is not None:
        console.print(f"dataset: {data.name} ({data.task}, target {data.target!r})")

    names = PipelineNames.from_cdk_app()
    cloud = LocalCloud(state_dir / CLOUD_SUBDIR)
    fleet: Fleet | None = None
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        # A SIGTERM (CI, `kill`) unwinds like Ctrl-C, so the finally below stops what we started.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        cloud.start()
        env = cloud.env()
        os.environ.update(env)
        console.print(
            f"local cloud at {cloud.endpoint_url}, MQTT {cloud.mqtt.host}:{cloud.mqtt.port} "
            f"(up in {cloud.startup_seconds:.1f} s)"
        )
        fleet = Fleet(cloud, root=state_dir / "devices", thing_group=names.thing_group, env=env)
        devices = fleet.start(options.devices, wait=False)  # they connect while the pipeline deploys
        console.print(f"devices: {', '.join(d.thing_name for d in devices)} starting in {names.thing_group}")
        retired = fleet.retire_others(client("iot"))
        if retired:
            console.print(f"devices: {', '.join(retired)} (an earlier run's) left {names.thing_group}")
        pipeline = deploy_pipeline(
            names,
            function_env=env,
            cache_dir=state_dir / "cache",
            log=lambda m: console.print(f"deployed {m}"),
        )
        # Written now, so another shell can follow this run (`source .local/env.sh`).
        write_env_file(state_dir, {**env, STATE_MACHINE_ENV: pipeline.state_machine_arn})
        dataset = None if data is None else upload(client("s3"), names.bucket, data)
        greengrass = client("greengrassv2")
        try:
            missing = fleet.wait_reported(greengrass, timeout_s=60)
        except FleetError as exc:
            raise RunError(str(exc)) from exc
        if missing:
            raise RunError(
                f"devices did not report within 60 s: {', '.join(missing)} (see {state_dir / 'devices'})"
            )
        console.print(f"devices: all {len(devices)} reported to the control plane")

        sfn = client("stepfunctions")
        document = execution_input(options, dataset, python=python_for_devices())
        (run_dir / "input.json").write_text(json.dumps(document, indent=2))
        arn = sfn.start_execution(
            stateMachineArn=pipeline.state_machine_arn, name=name, input=json.dumps(document)
        )["executionArn"]
        console.print(f"execution {name} started")
        things = [d.thing_name for d in devices]
        progress = follow_execution(
            sfn,
            arn,
            make_view(console, f"mlops-edge pipeline — {name}"),
            timeout_s=options.timeout_s,
            device_poller=_device_poller(greengrass, things),
        )
        if progress.status == "RUNNING":
            sfn.stop_execution(
                executionArn=arn, error="Timeout", cause=f"mlops-edge run --timeout {options.timeout_s}"
            )
            progress.status, progress.error = "TIMED_OUT", "Timeout"
            progress.cause = f"the execution did not finish within {options.timeout_s:.0f} s"

        saved_logs = save_function_logs(
            client("logs"),
            pipeline.function_names(),
            start_ms=int(started_epoch * 1000),
            out_dir=run_dir / "logs",
        )
        failing = progress.failing_state()
        where = {
            "Lambda logs of this run": str(run_dir / "logs"),
            **({"failing state's history": f"mlops-edge executions history {name}"} if failing else {}),
            "local cloud (endpoint, broker, training jobs)": str(state_dir / CLOUD_SUBDIR / "endpoint.log"),
            **{
                f"device {d.thing_name} (core, components)": f"{d.log_path}, {d.root / 'logs'}/"
                for d in devices
            },
        }
        console.print(f"Lambda logs: {len(saved_logs)} functions saved under {run_dir / 'logs'}", style="dim")
        report = build_report(
            progress,
            execution_arn=arn,
            things=things,
            total_s=time.perf_counter() - started,
            dataset={"name": data.name if data else None, **(dataset or {})},
            where_to_look=where,
            manifest=_read_manifest(client("s3"), manifest_uri(progress)),
        )
        report_path = options.report or run_dir / "report.json"
        md_path = write_report(report, report_path)
        print_summary(console, report)
        console.print(f"report: {report_path} and {md_path}")
        if options.keep:
            _keep_running(console, state_dir, env, things)
        return 0 if report["status"] == "SUCCEEDED" else 1
    except KeyboardInterrupt:
        console.print("interrupted: stopping what this run started")
        return 130
    finally:
        if fleet is not None:
            fleet.stop()
        cloud.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous_sigterm)


def _read_manifest(s3: Any, uri: str | None) -> dict[str, Any] | None:
    """The deployed model's model.json, or None when there is none (or it cannot be read)."""
    if not uri or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError):
        return None


def _keep_running(console: Console, state_dir: Path, env: Mapping[str, str], things: list[str]) -> None:
    console.print()
    console.print("[bold]the environment is running[/] (Ctrl-C stops it). In another shell:")
    console.print(f"  source {state_dir / 'env.sh'}")
    console.print("  mlops-edge mqtt sub 'edge/+/inference/result'")
    console.print("  mlops-edge devices")
    console.print(f"  mlops-edge infer --thing {things[0]} --json '{{\"rows\": [[...]]}}'")
    console.print(
        f"endpoint {env['AWS_ENDPOINT_URL']}; MQTT {env['MLOPS_EDGE_MQTT_HOST']}:{env['MLOPS_EDGE_MQTT_PORT']}"
    )
    console.print(
        f"  CA {env['MLOPS_EDGE_MQTT_CA']}\n  cert {env['MLOPS_EDGE_MQTT_CERT']}\n  key {env['MLOPS_EDGE_MQTT_KEY']}"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping the environment")
