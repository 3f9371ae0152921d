"""ExportOnnx core: quality gate, metrics hygiene, CSV choice, and the whole core on a tiny model."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from lambdas.core.export import collect_metrics, export_onnx, quality_gate

from .conftest import BUCKET, assert_selectable


def test_quality_gate_passes_and_names_failures() -> None:
    metrics = {"validation:rmse": 50.0, "validation:r2": 0.4, "onnx:rmse": 50.1}
    assert quality_gate(metrics, {"min": {}, "max": {}}) == {"passed": True, "cause": "no thresholds"}
    assert quality_gate(metrics, {"max": {"rmse": 60}})["passed"] is True  # short names resolve
    verdict = quality_gate(metrics, {"max": {"validation:rmse": 40}, "min": {"validation:r2": 0.5}})
    assert verdict["passed"] is False
    assert (
        "validation:rmse=50 > max 40" in verdict["cause"]
        and "validation:r2=0.4 < min 0.5" in verdict["cause"]
    )


def test_quality_gate_rejects_unreported_metric() -> None:
    verdict = quality_gate({"validation:rmse": 1.0}, {"min": {"validation:auc": 0.9}})
    assert verdict["passed"] is False and "validation:auc not reported" in verdict["cause"]


def test_metrics_drop_non_finite_values() -> None:
    job = {
        "FinalMetricDataList": [
            {"MetricName": "validation:rmse", "Value": 3.0},
            {"MetricName": "x", "Value": float("nan")},
        ]
    }
    metrics = collect_metrics(job, {"metrics": {"r2": None, "rmse": 3.1}})
    assert metrics == {"validation:rmse": 3.0, "onnx:rmse": 3.1}
    json.dumps(metrics, allow_nan=False)


class FakeSageMaker:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        return self.job


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, bytes]:
    """(model.tar.gz bytes, validation csv bytes, train csv bytes) from the real train.py on a small regression set."""
    from pipeline.ml.datasets import write_demo
    from pipeline.training import train

    root = tmp_path_factory.mktemp("train")
    demo = write_demo("diabetes", root)
    model_dir = root / "model"
    model_dir.mkdir()
    hps = train.read_hyperparameters([], {"SM_HPS": json.dumps({"num_round": 5, "max_depth": 2})})
    (root / "t").mkdir()
    (root / "t" / "train.csv").write_bytes(demo.train_csv.read_bytes())
    (root / "v").mkdir()
    (root / "v" / "validation.csv").write_bytes(demo.validation_csv.read_bytes())
    train.train(hps, str(root / "t"), str(root / "v"), str(model_dir))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return buf.getvalue(), demo.validation_csv.read_bytes(), demo.train_csv.read_bytes()


def test_export_uploads_immutable_artifacts_and_gates(
    trained_model: tuple[bytes, bytes, bytes], s3: Any, config: dict[str, Any], tmp_path: Path
) -> None:
    archive, csv, train_csv = trained_model
    s3.put_object(Bucket=BUCKET, Key="training/job/output/model.tar.gz", Body=archive)
    s3.put_object(Bucket=BUCKET, Key="datasets/validation/part-0.csv", Body=csv)
    s3.put_object(Bucket=BUCKET, Key="datasets/train/train.csv", Body=train_csv)
    config["dataset"]["validation"] = f"s3://{BUCKET}/datasets/validation/"
    config["dataset"]["train"] = f"s3://{BUCKET}/datasets/train/"
    config["quality"] = {"min": {}, "max": {"validation:rmse": 1e9}}
    job = {
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/training/job/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 55.0}],
    }
    out = export_onnx({"config": config}, s3=s3, sagemaker=FakeSageMaker(job), work_dir=tmp_path)
    assert_selectable("export_onnx", out)
    assert out["quality"]["passed"] is True and out["parity"]["passed"] is True
    assert out["onnx_uri"].endswith(
        f"models/{config['training']['job_name']}/{out['sha256'][:16]}/model.onnx"
    )
    head = s3.head_object(Bucket=BUCKET, Key=out["onnx_uri"].split("/", 3)[3])
    assert head["Metadata"]["sha256"] == out["sha256"]
    golden = json.loads(s3.get_object(Bucket=BUCKET, Key=out["golden_uri"].split("/", 3)[3])["Body"].read())
    assert golden["rows"] and len(golden["expected"]) == len(golden["rows"])
    json.dumps(out, allow_nan=False)
    # a retried export never rewrites an immutable key (ONNX bytes may differ between runs)
    again = export_onnx({"config": config}, s3=s3, sagemaker=FakeSageMaker(job), work_dir=tmp_path)
    assert again["quality"]["passed"] is True


def test_export_uploads_the_training_baseline_beside_the_model(
    trained_model: tuple[bytes, bytes, bytes], s3: Any, config: dict[str, Any], tmp_path: Path
) -> None:
    """Every file of OPTIONAL_MODEL_FILES the export wrote is uploaded beside model.onnx and listed in
    ``files``; with a separate validation set the baseline describes the training CSV."""
    from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

    archive, csv, train_csv = trained_model
    s3.put_object(Bucket=BUCKET, Key="training/job/output/model.tar.gz", Body=archive)
    s3.put_object(Bucket=BUCKET, Key="datasets/v/validation.csv", Body=csv)
    s3.put_object(Bucket=BUCKET, Key="datasets/t/train.csv", Body=train_csv)
    config["dataset"].update(validation=f"s3://{BUCKET}/datasets/v/", train=f"s3://{BUCKET}/datasets/t/")
    job = {
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/training/job/output/model.tar.gz"},
    }
    out = export_onnx({"config": config}, s3=s3, sagemaker=FakeSageMaker(job), work_dir=tmp_path)
    assert {"baseline/statistics.json", "baseline/constraints.json"} <= set(out["files"])
    assert set(out["files"]) <= set(OPTIONAL_MODEL_FILES)  # others (model.accel.onnx) when written
    folder = out["onnx_uri"].rsplit("/", 1)[0]
    for name, uri in out["files"].items():
        assert uri == f"{folder}/{name}"
    key = out["files"]["baseline/statistics.json"].split("/", 3)[3]
    statistics = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    train_rows = len(train_csv.decode().strip().splitlines()) - 1
    assert train_rows != len(csv.decode().strip().splitlines()) - 1
    assert statistics["dataset"]["item_count"] == train_rows
    assert s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]["sha256"]
