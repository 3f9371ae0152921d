"""train.py under both XGBoosts it meets: the training container's 1.7 and the project's current one.

SageMaker runs train.py in the image the pipeline names (``sagemaker-xgboost:1.7-1``: Python 3.8,
XGBoost 1.7.4 and that container's pandas, numpy, scikit-learn); ``mlops-edge train`` and the unit
tests run it under the project's XGBoost. Each demo dataset is trained under both, and both models
are exported to ONNX by ``pipeline.ml.export`` in the project's environment, which must load the
model JSON that 1.7 saved and reproduce its predictions: the parity the export checks (against the
project's XGBoost reading that file) and the parity with 1.7's own predictions, computed in the
container environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from local_cloud.services.sagemaker.container import lay_out, script_mode_env
from local_cloud.services.sagemaker.images import ImageNotFound, resolve
from pipeline.config.function_env import DEFAULT_TRAINING_IMAGE
from pipeline.ml.data import load_dataset
from pipeline.ml.datasets import DEMOS, write_demo
from pipeline.ml.export import DEFAULT_TOLERANCE, INPUT_NAME, export_model, parity_report
from pipeline.training import TRAIN_SCRIPT

pytestmark = pytest.mark.integration

CHANNELS = ("train", "validation")
HYPERPARAMETERS = {"target": "target", "num_round": "40", "max_depth": "4", "eta": "0.3"}
# Quality both versions must reach on the validation split, evaluated on the ONNX model.
FLOORS = {"diabetes": ("r2", 0.2), "breast_cancer": ("accuracy", 0.9), "wine": ("accuracy", 0.85)}

# Runs in the container environment: the 1.7 booster's own predictions on the float32 inputs.
PREDICT_17 = """
import sys
import numpy as np
import xgboost as xgb
for model, x, out in zip(*[iter(sys.argv[1:])] * 3):
    booster = xgb.Booster()
    booster.load_model(model)
    np.save(out, booster.predict(xgb.DMatrix(np.load(x), missing=np.nan), validate_features=False))
print(xgb.__version__)
"""


@dataclass
class Trained:
    demo: str
    xgboost: str  # "container" or "project"
    root: Path
    returncode: int
    output: str


@pytest.fixture(scope="module")
def container_python() -> str:
    """The interpreter of the image the pipeline names; scripts/setup installs it."""
    try:
        return resolve(DEFAULT_TRAINING_IMAGE).python
    except ImageNotFound as exc:
        pytest.skip(f"the training container's environment is missing: {exc}")


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, container_python: str
) -> dict[tuple[str, str], Trained]:
    """Every demo under both XGBoosts, all started at once (each spends seconds importing)."""
    tmp = tmp_path_factory.mktemp("xgboost-versions")
    started = {}
    for demo in DEMOS:
        data = write_demo(demo, tmp / "data")
        for which, python in (("container", container_python), ("project", sys.executable)):
            root = tmp / which / demo
            lay_out(root, CHANNELS, HYPERPARAMETERS)
            shutil.copy(data.train_csv, root / "input" / "data" / "train" / "train.csv")
            shutil.copy(data.validation_csv, root / "input" / "data" / "validation" / "validation.csv")
            env = {
                **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
                **script_mode_env(root, CHANNELS, HYPERPARAMETERS, job_name=f"{which}-{demo}"),
            }
            proc = subprocess.Popen(
                [python, str(TRAIN_SCRIPT)],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            started[demo, which] = (root, proc)
    done = {}
    for (demo, which), (root, proc) in started.items():
        out, _ = proc.communicate(timeout=300)
        done[demo, which] = Trained(demo, which, root, proc.returncode, out)
    return done


@pytest.fixture(scope="module")
def exported(trained: dict[tuple[str, str], Trained]) -> dict[tuple[str, str], dict]:
    """Both models of every demo exported by the project's export (its parity check included)."""
    manifests = {}
    for key, job in trained.items():
        assert job.returncode == 0, f"{key}: train.py failed:\n{job.output}"
        validation = job.root / "input" / "data" / "validation" / "validation.csv"
        manifests[key] = export_model(job.root / "model", validation, job.root / "onnx")
    return manifests


def test_each_version_trains_and_records_its_xgboost(trained: dict[tuple[str, str], Trained]) -> None:
    for (demo, which), job in trained.items():
        assert job.returncode == 0, f"{demo} under the {which} XGBoost:\n{job.output}"
        meta = json.loads((job.root / "model" / "training.json").read_text())
        expected = "1.7.4" if which == "container" else xgb.__version__
        assert meta["xgboost_version"] == expected, (demo, which)
        assert meta["task"] == DEMOS[demo][0]
        assert f"#metric validation:{FLOORS[demo][0]}=" in job.output


def test_both_versions_export_with_parity(exported: dict[tuple[str, str], dict]) -> None:
    for (demo, which), manifest in exported.items():
        assert manifest["parity"]["passed"], (demo, which, manifest["parity"])
        assert manifest["source"]["xgboost_version"] == xgb.__version__  # the export's own XGBoost
        trained_with = manifest["source"]["trained_with_xgboost"]
        assert trained_with == ("1.7.4" if which == "container" else xgb.__version__)
        metric, floor = FLOORS[demo]
        assert manifest["metrics"][metric] >= floor, (demo, which, manifest["metrics"])


def test_onnx_reproduces_the_container_xgboost_itself(
    trained: dict[tuple[str, str], Trained], exported: dict[tuple[str, str], dict], container_python: str
) -> None:
    """The ONNX model of a 1.7-trained booster answers as 1.7 does, not only as 3.x reads it."""
    import onnxruntime as ort

    args, expected = [], {}
    for demo in DEMOS:
        job, manifest = trained[demo, "container"], exported[demo, "container"]
        validation = job.root / "input" / "data" / "validation" / "validation.csv"
        data = load_dataset(
            validation, target="target", features=manifest["features"], classes=manifest["classes"]
        )
        x = np.ascontiguousarray(data.x, dtype=np.float32)
        np.save(job.root / "x.npy", x)
        args += [str(job.root / "model" / "xgboost-model.json"), str(job.root / "x.npy")]
        args.append(str(job.root / "pred17.npy"))
        session = ort.InferenceSession(
            str(job.root / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        outputs = session.run(None, {INPUT_NAME: x})
        expected[demo] = np.asarray(outputs[0] if DEMOS[demo][0] == "regression" else outputs[1], np.float64)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [container_python, "-c", PREDICT_17, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.7.4"
    for demo in DEMOS:
        pred = np.load(trained[demo, "container"].root / "pred17.npy")
        task = DEMOS[demo][0]
        pred = pred.reshape(-1) if task == "regression" else pred
        if task == "binary":
            pred = np.column_stack([1.0 - pred, pred])
        onnx_out = expected[demo].reshape(-1) if task == "regression" else expected[demo]
        report = parity_report(onnx_out, pred, DEFAULT_TOLERANCE)
        assert report["passed"], (demo, report)
