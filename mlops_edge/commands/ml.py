"""`mlops-edge train | export | predict | demo`: the model path without any cloud.

Each command parses options and forwards to a plain function in ``pipeline.ml``; heavy imports
happen inside the command so ``--help`` stays instant. ``train --sagemaker`` is
:mod:`mlops_edge.commands.train_sagemaker`. ``MLError`` and ``InvalidInput`` are user
errors (message, exit 1); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

if TYPE_CHECKING:  # the engine pulls in onnxruntime: only when a command runs
    from edge_runtime.inference import Engine

TASKS = ("auto", "regression", "binary", "multiclass")


def _console():  # rich is imported lazily like everything heavy
    from rich.console import Console

    return Console(highlight=False)


@click.command(
    help="Train an XGBoost model under the SageMaker script-mode contract: here, or with --sagemaker "
    "as a SageMaker training job submitted by the SageMaker Python SDK's ModelTrainer."
)
@click.option("--train", "train_csv", required=True, help="CSV file (or, with --sagemaker, s3:// prefix).")
@click.option("--validation", "validation_csv", help="CSV file (or, with --sagemaker, s3:// prefix).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/model"),
    show_default=True,
    help="Where xgboost-model.json and training.json go.",
)
@click.option("--target", default="target", show_default=True, help="Target column name.")
@click.option("--task", type=click.Choice(TASKS), default="auto", show_default=True)
@click.option("--num-round", type=int, default=100, show_default=True)
@click.option("--max-depth", type=int, default=6, show_default=True)
@click.option("--eta", type=float, default=0.3, show_default=True)
@click.option("--early-stopping-rounds", type=int, default=10, show_default=True, help="0 disables it.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--hp", "extra", multiple=True, metavar="KEY=VALUE", help="Any other train.py hyperparameter.")
@click.option(
    "--sagemaker",
    "on_sagemaker",
    is_flag=True,
    help="Run it as a SageMaker training job (AWS, or the local cloud when AWS_ENDPOINT_URL is set).",
)
@click.option(
    "--stack",
    help="--sagemaker: the deployed pipeline stack whose bucket and role are the defaults "
    "[default: cdk.json's stack_prefix + 'Pipeline'].",
)
@click.option(
    "--bucket",
    envvar="MLOPS_EDGE_BUCKET",
    help="--sagemaker: the artifact bucket (job output under artifacts/training/) "
    "[default: $MLOPS_EDGE_BUCKET, else the stack's ArtifactBucketName, else the SDK's default bucket].",
)
@click.option(
    "--role",
    envvar="MLOPS_EDGE_SAGEMAKER_ROLE",
    help="--sagemaker: the execution role, name or ARN "
    "[default: $MLOPS_EDGE_SAGEMAKER_ROLE, else the stack's SageMaker execution role].",
)
@click.option("--instance-type", default="ml.m5.large", show_default=True, help="--sagemaker: instance type.")
def train(
    train_csv: str,
    validation_csv: str | None,
    out_dir: Path,
    target: str,
    task: str,
    num_round: int,
    max_depth: int,
    eta: float,
    early_stopping_rounds: int,
    seed: int,
    extra: tuple[str, ...],
    on_sagemaker: bool,
    stack: str | None,
    bucket: str | None,
    role: str | None,
    instance_type: str,
) -> None:
    hps: dict[str, object] = {
        "target": target,
        "task": task,
        "num_round": num_round,
        "max_depth": max_depth,
        "eta": eta,
        "early_stopping_rounds": early_stopping_rounds,
        "seed": seed,
    }
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--hp")
        hps[key] = value
    channels = {"train": train_csv, **({"validation": validation_csv} if validation_csv else {})}
    job: dict[str, Any] = {}
    if on_sagemaker:
        from mlops_edge.commands.train_sagemaker import sagemaker_training

        info, metrics, job = sagemaker_training(
            channels, out_dir, hps, stack=stack, bucket=bucket, role=role, instance_type=instance_type
        )
    else:
        info, metrics = _train_here(channels, out_dir, hps)
    console = _console()
    console.print(
        f"[green]trained[/] {info['task']} model, best iteration {info['best_iteration']}, "
        f"{len(info['features'])} features -> {out_dir}"
    )
    if job:
        console.print(f"  SageMaker job {job['job_name']}: {job['model_artifact']}", soft_wrap=True)
    for name, value in sorted(metrics.items()):
        console.print(f"  {name} = {value:.6g}")


def _train_here(channels: dict[str, str], out_dir: Path, hps: dict[str, object]) -> tuple[dict, dict]:
    """train.py in a subprocess on this machine; returns (training.json, metrics)."""
    from mlops_edge.training import run_training
    from pipeline.ml.exceptions import MLError

    for name, location in channels.items():
        if location.startswith("s3://"):
            raise click.BadParameter(f"{location}: an s3:// {name} channel needs --sagemaker")
    validation = channels.get("validation")
    with tempfile.TemporaryDirectory(prefix="mlops-edge-job-") as root:
        try:
            result = run_training(
                Path(channels["train"]),
                Path(root),
                validation_csv=Path(validation) if validation else None,
                hyperparameters=hps,
            )
        except MLError as exc:
            raise click.ClickException(str(exc)) from exc
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(result.model_dir, out_dir)
    return result.training, result.metrics


@click.command(help="Export a trained model to ONNX, prove parity, write manifest + golden set.")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/model"),
    show_default=True,
    help="Training output (xgboost-model.json + training.json).",
)
@click.option(
    "--validation", "validation_csv", type=click.Path(dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/onnx"),
    show_default=True,
)
@click.option("--abs-tolerance", type=float, default=None, help="Parity bound |onnx-xgb| <= abs + rel*|xgb|.")
@click.option("--rel-tolerance", type=float, default=None)
@click.option("--name", default=None, help="Model name in model.json.")
def export(
    model_dir: Path,
    validation_csv: Path,
    out_dir: Path,
    abs_tolerance: float | None,
    rel_tolerance: float | None,
    name: str | None,
) -> None:
    from pipeline.ml.exceptions import MLError
    from pipeline.ml.export import DEFAULT_TOLERANCE, Tolerance, export_model

    tol = Tolerance(
        abs=DEFAULT_TOLERANCE.abs if abs_tolerance is None else abs_tolerance,
        rel=DEFAULT_TOLERANCE.rel if rel_tolerance is None else rel_tolerance,
    )
    try:
        manifest = export_model(model_dir, validation_csv, out_dir, tolerance=tol, name=name)
    except MLError as exc:
        raise click.ClickException(str(exc)) from exc
    _print_manifest(manifest, out_dir)


def _print_manifest(manifest: dict, out_dir: Path) -> None:
    console = _console()
    p = manifest["parity"]
    console.print(
        f"[green]exported[/] {manifest['task']} model -> {out_dir}/model.onnx (sha256 {manifest['sha256'][:12]}…)"
    )
    console.print(
        f"  parity on {p['rows']} rows: max abs diff {p['max_abs_diff']:.3g}, max rel diff {p['max_rel_diff']:.3g} "
        f"(tolerance abs {p['tolerance']['abs']:g}, rel {p['tolerance']['rel']:g}) [green]passed[/]"
    )
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in manifest["metrics"].items() if v is not None)
    console.print(f"  metrics (ONNX model): {metrics}")


@click.command(help="Predict with an exported model directory using the edge engine.")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("payload", required=False)
@click.option(
    "--file", "payload_file", type=click.File("rb"), help="Read the payload from a file ('-': stdin)."
)
@click.option("--golden", is_flag=True, help="Send the model's golden rows and check the answers.")
def predict(model_dir: Path, payload: str | None, payload_file: BinaryIO | None, golden: bool) -> None:
    from edge_runtime.inference import Engine, EngineError, InvalidInput

    try:
        engine = Engine.load(model_dir)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from exc
    if golden:
        _check_golden(engine, model_dir)
        return
    if payload is None and payload_file is None:
        raise click.UsageError("give a PAYLOAD (JSON), --file PATH, or --golden")
    data: str | bytes = payload if payload is not None else payload_file.read()
    try:
        response = engine.predict(data)
    except InvalidInput as exc:
        raise click.ClickException(f"invalid input ({exc.code}): {exc}") from exc
    click.echo(json.dumps(response, indent=2))


def _check_golden(engine: Engine, model_dir: Path) -> None:
    from mlops_edge.demo import golden_mismatches

    golden = json.loads((model_dir / "golden.json").read_text())
    answers = engine.predict({"rows": golden["rows"]})["predictions"]
    problems = golden_mismatches(golden["expected"], answers, golden["tolerance"])
    if problems:
        raise click.ClickException("golden set mismatch: " + "; ".join(problems[:5]))
    click.echo(f"{len(answers)} golden rows answered as expected")


@click.command(help="Train, export, prove parity and predict on the bundled demo datasets.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option(
    "--dataset",
    "names",
    multiple=True,
    type=click.Choice(["diabetes", "breast_cancer", "wine"]),
    help="Run only these (default: all three).",
)
@click.option("--num-round", type=int, default=60, show_default=True)
def demo(workdir: Path, names: tuple[str, ...], num_round: int) -> None:
    from rich.table import Table

    from mlops_edge.demo import run_demo
    from pipeline.ml.exceptions import MLError

    console = _console()
    console.print(
        "[bold]mlops-edge demo[/]: the model path (train -> ONNX -> parity -> edge engine) on scikit-learn's "
        "bundled datasets.\nThe full pipeline on the local cloud is `mlops-edge run` once it exists."
    )
    try:
        with console.status("working…") as status:
            results = run_demo(
                workdir,
                names=list(names) or None,
                num_round=num_round,
                progress=lambda msg: (console.print(f"  {msg}"), status.update(msg)),
            )
    except MLError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title="demo summary")
    for col in ("dataset", "task", "validation (ONNX)", "parity max diff", "golden", "example", "s"):
        table.add_column(col, no_wrap=col in ("dataset", "task"))
    for r in results:
        m, p = r.manifest["metrics"], r.manifest["parity"]
        keys = ("rmse", "r2") if r.task == "regression" else ("accuracy", "auc")
        shown = " ".join(f"{k} {m[k]:.3g}" for k in keys if m.get(k) is not None)
        out = r.example_output
        example = (
            f"{out['value']:.4g}"
            if "value" in out
            else f"{out['class']} ({max(out['probabilities'].values()):.2f})"
        )
        table.add_row(
            r.name,
            r.task,
            shown,
            f"{p['max_abs_diff']:.1g}",
            f"{r.golden_checked} ok",
            example,
            f"{r.seconds:.1f}",
        )
    console.print(table)
    console.print(
        f"[green]all {len(results)} models exported with parity proven[/]; model dirs under {workdir}/models"
    )
    sys.stdout.flush()
