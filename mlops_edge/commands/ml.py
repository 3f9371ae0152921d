"""`mlops-edge train | export | predict | demo`: the model path without any cloud.

Each command parses options and forwards to a plain function in ``pipeline.ml``; heavy imports
happen inside the command so ``--help`` stays instant. ``MLError`` and ``InvalidInput`` are user
errors (message, exit 1); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

if TYPE_CHECKING:  # the engine pulls in onnxruntime: only when a command runs
    from edge_runtime.inference import Engine

TASKS = ("auto", "regression", "binary", "multiclass")
#: The ``#metric validation:<name>`` lines train.py prints (lambdas/core/configure.py METRIC_NAMES).
METRIC_NAMES = ("rmse", "mae", "r2", "accuracy", "f1", "logloss", "auc")
#: The submit step of ``train --sagemaker``; it runs in the SageMaker SDK's own environment.
SUBMIT_SCRIPT = Path(__file__).with_name("sagemaker_submit.py")
#: Where scripts/setup puts that environment's interpreter (beside the project's, under .venv).
SDK_PYTHON_VAR = "MLOPS_EDGE_SAGEMAKER_PYTHON"


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
        _require_sdk_python()
        if not (bucket and role):
            deployed = deployed_training_defaults(stack or _pipeline_stack_name())
            bucket, role = bucket or deployed.get("bucket"), role or deployed.get("role")
        if not role:
            raise click.UsageError(
                "no execution role: pass --role (or MLOPS_EDGE_SAGEMAKER_ROLE), or deploy the pipeline "
                "stack (`mlops-edge run --keep` locally, `cdk deploy` on AWS) whose role is the default"
            )
        spec = {"bucket": bucket, "role": role, "instance_type": instance_type, "hyperparameters": hps}
        info, metrics, job = train_on_sagemaker(channels, out_dir, spec)
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


def _pipeline_stack_name() -> str:
    from mlops_edge.environment.assembly import REPO_ROOT
    from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

    context = load_cdk_json_context(REPO_ROOT / "cdk.json")
    return f"{EdgeConfig.from_context(context.get).stack_prefix}Pipeline"


def deployed_training_defaults(stack: str) -> dict[str, str]:
    """The deployed pipeline stack's artifact bucket and SageMaker execution role (the same on AWS
    and on the local cloud, where `mlops-edge run` deploys that stack); {} when there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.aws import client

    cfn = client("cloudformation")
    try:
        (found,) = cfn.describe_stacks(StackName=stack)["Stacks"]
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    except (BotoCoreError, ClientError):
        return {}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    roles = [
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::IAM::Role"
        and r["LogicalResourceId"].startswith("TrainingExecutionRole")
    ]
    defaults = {"bucket": outputs.get("ArtifactBucketName", ""), "role": roles[0] if len(roles) == 1 else ""}
    return {k: v for k, v in defaults.items() if v}


def sdk_python(environ: dict[str, str] | None = None) -> Path:
    """The SageMaker SDK environment's interpreter: ``$MLOPS_EDGE_SAGEMAKER_PYTHON`` or set-up's."""
    environ = dict(os.environ) if environ is None else environ
    configured = environ.get(SDK_PYTHON_VAR)
    return Path(configured) if configured else Path(sys.prefix) / "sagemaker-sdk" / "bin" / "python"


def _require_sdk_python() -> Path:
    python = sdk_python()
    if not python.exists():
        raise click.ClickException(
            f"the SageMaker Python SDK's environment is not installed ({python}): run scripts/setup"
        )
    return python


def train_on_sagemaker(
    channels: dict[str, str], out_dir: Path, options: dict[str, Any]
) -> tuple[dict, dict[str, float], dict[str, Any]]:
    """Submit train.py through ModelTrainer in the SDK's environment, wait, unpack model.tar.gz.

    ``options``: ``bucket`` (or None), ``role``, ``instance_type``, ``hyperparameters``. Returns
    (training.json, the job's final metrics, the submit step's result).
    """
    from pipeline.config.function_env import Settings
    from pipeline.training import source_tarball

    python = _require_sdk_python()
    for name, location in channels.items():
        if not location.startswith("s3://") and not Path(location).is_file():
            raise click.BadParameter(f"{name} data {location}: no such file (nor an s3:// prefix)")
    with tempfile.TemporaryDirectory(prefix="mlops-edge-submit-") as tmp:
        root = Path(tmp)
        (root / "sourcedir.tar.gz").write_bytes(source_tarball())
        spec = {
            **options,
            "prefix": f"{Settings().artifact_prefix}training/",
            "base_job_name": "mlops-edge-train",
            "max_runtime_s": 3600,
            "channels": {
                k: v if v.startswith("s3://") else str(Path(v).resolve()) for k, v in channels.items()
            },
            "sourcedir": str(root / "sourcedir.tar.gz"),
            "metric_names": list(METRIC_NAMES),
            "download_to": str(root / "model"),
            "poll_s": 2,
            "result": str(root / "result.json"),
        }
        (root / "spec.json").write_text(json.dumps(spec))
        # The SDK's own narration (job name, status, the job's log lines) goes to this terminal.
        proc = subprocess.run([str(python), str(SUBMIT_SCRIPT), str(root / "spec.json")], check=False)
        if not (root / "result.json").exists():
            raise click.ClickException(
                f"the SageMaker submit step failed (exit {proc.returncode}); see above"
            )
        job = json.loads((root / "result.json").read_text())
        if job["status"] == "NotSubmitted":
            raise click.ClickException(f"no training job was submitted: {job['error']}")
        if job["status"] != "Completed":
            raise click.ClickException(
                f"training job {job['job_name']} {job['status']}: {job.get('failure_reason') or job.get('error')}"
            )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        with tarfile.open(job["model_tar"]) as tar:
            tar.extractall(out_dir, filter="data")
    return json.loads((out_dir / "training.json").read_text()), job["metrics"], job


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
