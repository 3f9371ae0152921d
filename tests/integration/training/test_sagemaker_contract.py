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
from dataclasses import dataclass
from pathlib import Path

import pytest
import xgboost as xgb

from local_cloud.services.sagemaker.container import lay_out, script_mode_env
from pipeline.ml.datasets import write_demo
from pipeline.training import TRAIN_SCRIPT

pytestmark = pytest.mark.integration

# The regex a MetricDefinition for validation:rmse uses (docs/contracts.md §7).
RMSE_DEFINITION = re.compile(r"#metric validation:rmse=([-0-9.eE+]+)")


@dataclass
class Job:
    """A finished training job: its root and what the process left."""

    root: Path
    returncode: int
    stdout: str
    stderr: str


def _start(
    root: Path, hps: dict[str, str], channels: dict[str, str], argv: list[str] = ()
) -> subprocess.Popen:
    """Lay out root like /opt/ml and start train.py the way the training toolkit does."""
    lay_out(root, list(channels), hps)
    env = {**os.environ, **script_mode_env(root, list(channels), hps, job_name=root.name)}
    for name, csv_text in channels.items():
        (root / "input" / "data" / name / f"{name}.csv").write_text(csv_text)
    return subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Job]:
    """All jobs of this module started at once: each spends seconds importing xgboost."""
    tmp = tmp_path_factory.mktemp("sagemaker-jobs")
    diabetes = write_demo("diabetes", tmp / "data")
    wine = write_demo("wine", tmp / "data")
    specs = {
        "regression": (
            {
                "target": "target",
                "task": "regression",
                "num_round": "40",
                "eta": "0.2",
                "max_depth": "3",
                "early_stopping_rounds": "5",
                "sagemaker_program": "train.py",
            },
            {"train": diabetes.train_csv.read_text(), "validation": diabetes.validation_csv.read_text()},
            ["--num_round", "30"],  # the toolkit also passes hyperparameters as CLI args
        ),
        "multiclass": (
            {"target": '"cultivar"', "num_round": "15"},  # task=auto, SDK-style JSON-encoded string
            {"train": wine.train_csv.read_text().replace("target", "cultivar", 1)},
            [],
        ),
        "missing-target": ({"num_round": "5"}, {"train": "a,b,label\n" + "1,2,0\n" * 30}, []),
        "bad-csv": ({"num_round": "5"}, {"train": "a,b,target\n" + "x,2,1\n" * 30}, []),
    }
    procs = {name: (tmp / name, _start(tmp / name, *spec)) for name, spec in specs.items()}
    done = {}
    for name, (root, proc) in procs.items():
        out, err = proc.communicate(timeout=180)
        done[name] = Job(root=root, returncode=proc.returncode, stdout=out, stderr=err)
    return done


def test_regression_job_with_validation_channel(jobs: dict[str, Job]) -> None:
    job = jobs["regression"]
    assert job.returncode == 0, job.stderr
    model = job.root / "model"
    assert sorted(p.name for p in model.iterdir()) == ["training.json", "xgboost-model.json"]
    rmse = float(RMSE_DEFINITION.search(job.stdout).group(1))
    assert 30 < rmse < 100
    assert re.search(r"^#metric validation:r2=[-0-9.eE+]+$", job.stdout, re.MULTILINE)
    meta = json.loads((model / "training.json").read_text())
    assert meta["task"] == "regression" and meta["classes"] is None and meta["target"] == "target"
    assert meta["features"] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    assert meta["hyperparameters"]["num_round"] == 30 and meta["hyperparameters"]["eta"] == 0.2
    assert meta["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-8)
    booster = xgb.Booster()
    booster.load_model(str(model / "xgboost-model.json"))
    assert booster.num_boosted_rounds() == meta["best_iteration"] + 1 <= 30
    assert not (job.root / "output" / "failure").exists()


def test_multiclass_string_labels_held_out_from_train(jobs: dict[str, Job]) -> None:
    job = jobs["multiclass"]
    assert job.returncode == 0, job.stderr
    meta = json.loads((job.root / "model" / "training.json").read_text())
    assert meta["task"] == "multiclass" and meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["validation_rows"] > 0 and meta["target"] == "cultivar"
    assert re.search(r"^#metric validation:accuracy=0\.\d+", job.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing-target", "channel 'train' has no target column 'target'"),
        ("bad-csv", "feature columns must be numeric, these are not: a"),
    ],
)
def test_bad_input_writes_failure_and_exits_1(jobs: dict[str, Job], name: str, reason: str) -> None:
    job = jobs[name]
    assert job.returncode == 1
    failure = (job.root / "output" / "failure").read_text()
    assert failure.startswith("InvalidInput: ") and reason in failure
    assert reason in job.stderr
    assert not (job.root / "model" / "xgboost-model.json").exists()
