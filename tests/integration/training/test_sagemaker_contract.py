"""train.py as SageMaker runs it: a real subprocess in an /opt/ml-like root with SM_* variables.

Checks the contract of docs/contracts.md §1 and §7: hyperparameters (strings) from
hyperparameters.json / SM_HPS / CLI, channels, model dir contents, metric lines that the
MetricDefinitions regex reads, and the failure file + exit code 1 on bad input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xgboost as xgb

from pipeline.ml.datasets import write_demo
from pipeline.training import TRAIN_SCRIPT

pytestmark = pytest.mark.integration

# The regex a MetricDefinition for validation:rmse uses (docs/contracts.md §7).
RMSE_DEFINITION = re.compile(r"#metric validation:rmse=([-0-9.eE+]+)")


def _job(
    root: Path, hps: dict[str, str], channels: dict[str, str], argv: list[str] = ()
) -> subprocess.CompletedProcess:
    """Lay out root like /opt/ml and run train.py the way the training toolkit does."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hps))
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(hps),
    }
    for name, csv_text in channels.items():
        folder = root / "input" / "data" / name
        folder.mkdir(parents=True)
        (folder / f"{name}.csv").write_text(csv_text)
        env[f"SM_CHANNEL_{name.upper()}"] = str(folder)
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_regression_job_with_validation_channel(tmp_path: Path) -> None:
    data = write_demo("diabetes", tmp_path / "data")
    hps = {"target": "target", "task": "regression", "num_round": "40", "eta": "0.2", "max_depth": "3",
           "early_stopping_rounds": "5", "sagemaker_program": "train.py"}  # fmt: skip
    proc = _job(
        tmp_path / "job",
        hps,
        {"train": data.train_csv.read_text(), "validation": data.validation_csv.read_text()},
        argv=["--num_round", "30"],  # the toolkit also passes hyperparameters as CLI args
    )
    assert proc.returncode == 0, proc.stderr
    model = tmp_path / "job" / "model"
    assert sorted(p.name for p in model.iterdir()) == ["training.json", "xgboost-model.json"]
    rmse = float(RMSE_DEFINITION.search(proc.stdout).group(1))
    assert 30 < rmse < 100
    assert re.search(r"^#metric validation:r2=[-0-9.eE+]+$", proc.stdout, re.MULTILINE)
    meta = json.loads((model / "training.json").read_text())
    assert meta["task"] == "regression" and meta["classes"] is None and meta["target"] == "target"
    assert meta["features"] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert meta["hyperparameters"]["num_round"] == 30 and meta["hyperparameters"]["eta"] == 0.2
    assert meta["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-8)
    booster = xgb.Booster()
    booster.load_model(str(model / "xgboost-model.json"))
    assert booster.num_boosted_rounds() == meta["best_iteration"] + 1 <= 30
    assert not (tmp_path / "job" / "output" / "failure").exists()


def test_multiclass_string_labels_held_out_from_train(tmp_path: Path) -> None:
    data = write_demo("wine", tmp_path / "data")
    text = data.train_csv.read_text().replace("target", "cultivar", 1)
    proc = _job(tmp_path / "job", {"target": '"cultivar"', "num_round": "15"}, {"train": text})  # task=auto
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "job" / "model" / "training.json").read_text())
    assert meta["task"] == "multiclass" and meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["validation_rows"] > 0 and meta["target"] == "cultivar"
    assert re.search(r"^#metric validation:accuracy=0\.\d+", proc.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    ("channels", "reason"),
    [
        (
            {"train": "a,b,label\n" + "1,2,0\n" * 30},
            "InvalidInput: channel 'train' has no target column 'target'",
        ),
        ({"train": "a,b,target\n" + "x,2,1\n" * 30}, "feature columns must be numeric, these are not: a"),
    ],
    ids=["missing-target", "bad-csv"],
)
def test_bad_input_writes_failure_and_exits_1(tmp_path: Path, channels: dict, reason: str) -> None:
    proc = _job(tmp_path / "job", {"num_round": "5"}, channels)
    assert proc.returncode == 1
    failure = (tmp_path / "job" / "output" / "failure").read_text()
    assert failure.startswith("InvalidInput: ") and reason in failure
    assert reason in proc.stderr
    assert not (tmp_path / "job" / "model" / "xgboost-model.json").exists()
