"""`mlops-edge run`: README command 1."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mlops_edge.commands.common import UserError, console

DEMOS = ("diabetes", "breast_cancer", "wine")
#: mlops_edge.environment.run_options.MAX_DEVICES (not imported here: `--help` stays instant).
MAX_DEVICES = 100


def _hyperparameters(values: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--hp {item!r}: expected NAME=VALUE, e.g. --hp num_round=50")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@click.command()
@click.option(
    "--devices",
    type=click.IntRange(1, MAX_DEVICES),
    default=1,
    show_default=True,
    help="Simulated core devices, named mlops-edge-device-01 … -NN; each runs its own core and "
    "inference component process.",
)
@click.option(
    "--canary",
    type=click.IntRange(min=1),
    help="Staged rollout: a canary stage of K devices (taken from the fleet group: devices already in "
    "the canary group first, then by name), verified before the rest of the fleet gets the version.",
)
@click.option(
    "--fail-devices",
    "fail_devices",
    metavar="LIST",
    default="",
    help="Fault injection for demonstrations and tests: these devices (names or numbers, "
    "comma-separated, e.g. 3,7) fail every component install.",
)
@click.option(
    "--demo", type=click.Choice(DEMOS), default="diabetes", show_default=True, help="Bundled dataset."
)
@click.option(
    "--data", type=click.Path(dir_okay=False, path_type=Path), help="Your CSV (header row) instead."
)
@click.option("--target", help="Target column of --data.")
@click.option(
    "--task",
    type=click.Choice(["auto", "regression", "binary", "multiclass"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--hp", "hps", multiple=True, metavar="NAME=VALUE", help="Training hyperparameter (repeatable)."
)
@click.option(
    "--model-package", "model_package_arn", help="Deploy this registered model package; skip training."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".local"),
    show_default=True,
    help="Local cloud, devices and run reports live here; reused by the next run.",
)
@click.option(
    "--cdk-out",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Deploy this synthesized cloud assembly as it is (e.g. CI's cdk.out) instead of synthesizing the app.",
)
@click.option(
    "--report", type=click.Path(dir_okay=False, path_type=Path), help="Report JSON path (+ .md beside)."
)
@click.option("--keep", is_flag=True, help="Leave the environment running after the run (Ctrl-C stops it).")
@click.option("--name", help="Execution name (default: run-<timestamp>-<random>).")
@click.option("--timeout", "timeout_s", type=float, default=900.0, show_default=True, help="Seconds to wait.")
def run(
    devices: int,
    canary: int | None,
    fail_devices: str,
    demo: str,
    data: Path | None,
    target: str | None,
    task: str,
    hps: tuple[str, ...],
    model_package_arn: str | None,
    state_dir: Path,
    cdk_out: Path | None,
    report: Path | None,
    keep: bool,
    name: str | None,
    timeout_s: float,
) -> None:
    """Run the whole pipeline end to end on the embedded local cloud, with N simulated devices.

    Trains (or takes --model-package), exports to ONNX, registers, publishes the Greengrass
    components, deploys them to the devices and verifies their answers over MQTT. Exit code 0
    only when the execution succeeded and every device verified.
    """
    from mlops_edge.environment.run_options import RunError, RunOptions
    from mlops_edge.environment.runner import run_pipeline

    options = RunOptions(
        devices=devices,
        canary=canary,
        fail_devices=tuple(item.strip() for item in fail_devices.split(",") if item.strip()),
        demo=demo,
        data=data,
        target=target,
        task=task,
        model_package_arn=model_package_arn,
        hyperparameters=_hyperparameters(hps),
        state_dir=state_dir,
        cdk_out=cdk_out,
        report=report,
        keep=keep,
        name=name,
        timeout_s=timeout_s,
    )
    try:
        code = run_pipeline(options, console)
    except RunError as exc:
        raise UserError(str(exc)) from exc
    raise SystemExit(code)
