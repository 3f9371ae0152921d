"""ExportOnnx: the training job's model.tar.gz -> ONNX + manifest + golden set at immutable keys.

Also evaluates the quality gate (the Choice state after it only reads ``quality.passed``), so the
thresholds live next to the metrics they judge and the cause names the metric that failed.
"""

from __future__ import annotations

import math
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from lambdas.core.aws import put_immutable, split_s3_uri, transient_errors
from lambdas.core.exceptions import TrainingFailed

# At module level on purpose: Lambda's init phase (and the local cloud's pre-warmed worker) pays
# for pandas and scikit-learn (~3-4 s), not the first invocation on the pipeline's critical path.
from pipeline.ml.exceptions import InvalidDataset
from pipeline.ml.export import export_model
from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

ARTIFACT_FILES = {"model.onnx": "application/octet-stream", "model.json": "application/json"}


def _finite_metrics(raw: dict[str, Any]) -> dict[str, float]:
    """Only finite numbers: NaN/Infinity are not JSON, and Step Functions rejects them."""
    out: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def collect_metrics(job: dict[str, Any], manifest: dict[str, Any]) -> dict[str, float]:
    """Training job metrics (``validation:rmse``) plus the ONNX-evaluated ones (``onnx:rmse``)."""
    metrics = {m["MetricName"]: m.get("Value") for m in job.get("FinalMetricDataList", [])}
    metrics.update({f"onnx:{k}": v for k, v in (manifest.get("metrics") or {}).items()})
    return _finite_metrics(metrics)


def quality_gate(metrics: dict[str, float], quality: dict[str, Any]) -> dict[str, Any]:
    """``{"passed", "cause"}``: every threshold met, or which were not (a missing metric fails)."""
    problems = []
    for bound, op in (("min", "<"), ("max", ">")):
        for name, limit in sorted((quality.get(bound) or {}).items()):
            value = next(
                (metrics[n] for n in (name, f"validation:{name}", f"onnx:{name}") if n in metrics), None
            )
            if value is None:
                problems.append(f"{name} not reported (reported: {', '.join(sorted(metrics)) or 'none'})")
            elif (value < limit) if bound == "min" else (value > limit):
                problems.append(f"{name}={value:.6g} {op} {bound} {limit:g}")
    if problems:
        return {"passed": False, "cause": "; ".join(problems)}
    return {
        "passed": True,
        "cause": "all thresholds met" if (quality.get("min") or quality.get("max")) else "no thresholds",
    }


def _pick_csv(s3: Any, uri: str) -> tuple[str, str]:
    """The CSV to prove parity on: the URI itself if it names a .csv, else the first under the prefix."""
    bucket, key = split_s3_uri(uri)
    if key.lower().endswith(".csv"):
        return bucket, key
    with transient_errors(f"s3 list {uri}"):
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    keys = sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"].lower().endswith(".csv"))
    if not keys:
        raise InvalidDataset(f"no .csv object under {uri}: upload the dataset there or fix dataset.*")
    return bucket, keys[0]


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")


def export_onnx(
    event: dict[str, Any], *, s3: Any, sagemaker: Any, work_dir: Path | None = None
) -> dict[str, Any]:
    """Runs ``pipeline.ml.export.export_model`` on the trained model and uploads the results."""
    config = event["config"]
    job_name = config["training"]["job_name"]
    with transient_errors(f"DescribeTrainingJob {job_name}"):
        job = sagemaker.describe_training_job(TrainingJobName=job_name)
    if job.get("TrainingJobStatus") != "Completed":
        raise TrainingFailed(f"training job {job_name} is {job.get('TrainingJobStatus')}, not Completed")
    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    dataset = config["dataset"]
    data_uri = dataset.get("validation") or dataset["train"]

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = Path(tmp)
        bucket, key = split_s3_uri(model_uri)
        with transient_errors(f"s3 get {model_uri}"):
            s3.download_file(bucket, key, str(root / "model.tar.gz"))
        (root / "model").mkdir()
        _extract(root / "model.tar.gz", root / "model")
        _download_csv(s3, data_uri, root / "validation.csv")
        # The baseline describes the training data; with a separate validation set that is another
        # file (without one, export_model falls back to the CSV it checks parity on).
        baseline_csv = None
        if dataset.get("validation"):
            baseline_csv = _download_csv(s3, dataset["train"], root / "train.csv")
        out = root / "out"
        manifest = export_model(
            root / "model",
            root / "validation.csv",
            out,
            name=config["components"]["model_name"],
            baseline_csv=baseline_csv,
        )

        # Keyed by content as well as job: a retried export may produce different ONNX bytes, and an
        # immutable key must never be rewritten.
        prefix = f"{config['artifact_prefix']}models/{job_name}/{manifest['sha256'][:16]}/"
        uris: dict[str, str] = {}
        for name, content_type in {**ARTIFACT_FILES, "golden.json": "application/json"}.items():
            put_immutable(
                s3, config["bucket"], prefix + name, (out / name).read_bytes(), content_type=content_type
            )
            uris[name] = f"s3://{config['bucket']}/{prefix}{name}"
        files = _upload_optional(s3, config["bucket"], prefix, out)

    metrics = collect_metrics(job, manifest)
    parity = manifest.get("parity") or {}
    return {
        "onnx_uri": uris["model.onnx"],
        "manifest_uri": uris["model.json"],
        "golden_uri": uris["golden.json"],
        "sha256": manifest["sha256"],
        "task": manifest.get("task"),
        "metrics": metrics,
        "parity": {k: parity.get(k) for k in ("max_abs_diff", "max_rel_diff", "rows", "passed")},
        "quality": quality_gate(metrics, config.get("quality") or {}),
        "training_job": job_name,
        "model_data_uri": model_uri,
        "files": files,
    }


def _download_csv(s3: Any, uri: str, path: Path) -> Path:
    """The dataset's CSV (the URI itself or the first under the prefix) at ``path``."""
    bucket, key = _pick_csv(s3, uri)
    with transient_errors(f"s3 get s3://{bucket}/{key}"):
        s3.download_file(bucket, key, str(path))
    return path


def _upload_optional(s3: Any, bucket: str, prefix: str, out: Path) -> dict[str, str]:
    """Upload each of :data:`OPTIONAL_MODEL_FILES` the export wrote, at its relative path under
    ``prefix`` (so the registry and PublishComponents find it beside model.onnx); name -> URI."""
    files: dict[str, str] = {}
    for name in OPTIONAL_MODEL_FILES:
        path = out / name
        if not path.is_file():
            continue
        content_type = "application/json" if name.endswith(".json") else "application/octet-stream"
        put_immutable(s3, bucket, prefix + name, path.read_bytes(), content_type=content_type)
        files[name] = f"s3://{bucket}/{prefix}{name}"
    return files
