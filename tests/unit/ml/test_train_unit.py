"""train.py's rules tested in-process: hyperparameter precedence, task inference, labels, inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline.ml.datasets import write_demo
from pipeline.training import train as train_py
from tests.unit.ml.helpers import hyperparameters


def test_hyperparameter_precedence_file_then_sm_hps_then_cli(tmp_path: Path) -> None:
    (tmp_path / "hyperparameters.json").write_text(
        json.dumps({"num_round": "7", "eta": "0.5", "target": '"label"', "max_depth": "3"})
    )
    env = {"SM_INPUT_CONFIG_DIR": str(tmp_path), "SM_HPS": json.dumps({"eta": 0.2, "max_depth": 4})}
    hps = train_py.read_hyperparameters(["--max_depth", "5", "--sagemaker_region", "x"], env)
    assert hps["num_round"] == 7 and hps["target"] == "label"
    assert hps["eta"] == 0.2  # SM_HPS beats the file
    assert hps["max_depth"] == 5  # CLI beats both; unknown CLI args are ignored
    assert hps["task"] == "auto" and hps["seed"] == 42


def test_only_json_encoded_strings_are_decoded(tmp_path: Path) -> None:
    env = {"SM_INPUT_CONFIG_DIR": str(tmp_path), "SM_HPS": json.dumps({"target": "true", "num_round": "5.0"})}
    hps = train_py.read_hyperparameters([], env)
    assert hps["target"] == "true" and hps["num_round"] == 5
    env["SM_HPS"] = json.dumps({"target": '"1"', "task": '"binary"'})
    hps = train_py.read_hyperparameters([], env)
    assert hps["target"] == "1" and hps["task"] == "binary"


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({"num_round": "many"}, "num_round='many' is not a valid integer"),
        ({"num_round": "2.5"}, "num_round='2.5' is not a valid integer"),
        ({"eta": "fast"}, "eta='fast' is not a valid number"),
        ({"task": "ranking"}, "task='ranking' must be one of"),
        ({"validation_fraction": "1.5"}, "validation_fraction must be between 0 and 1"),
        ({"num_round": "0"}, "num_round must be >= 1"),
    ],
)
def test_bad_hyperparameters(tmp_path: Path, hps: dict, message: str) -> None:
    env = {"SM_INPUT_CONFIG_DIR": str(tmp_path), "SM_HPS": json.dumps(hps)}
    with pytest.raises(train_py.TrainingError, match=message):
        train_py.read_hyperparameters([], env)


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["a", "b", "a"], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([0, 1, 1, 0], "binary"),
        ([0, 1, 2, 5], "multiclass"),
        ([0.5, 1.5, 2.0], "regression"),
        (list(range(50)), "regression"),
    ],
)
def test_infer_task(values: list, task: str) -> None:
    assert train_py.infer_task(pd.Series(values)) == task


def test_string_labels_are_sorted_and_kept(tmp_path: Path) -> None:
    codes, classes = train_py.encode_labels(pd.Series(["dog", "cat", "dog"]), "multiclass")
    assert classes == ["cat", "dog"] and codes.tolist() == [1, 0, 1]
    with pytest.raises(train_py.TrainingError, match="not seen in training"):
        train_py.encode_labels(pd.Series(["cow"]), "multiclass", classes)
    with pytest.raises(train_py.TrainingError, match="exactly two classes"):
        train_py.encode_labels(pd.Series(["a", "b", "c"]), "binary")


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("a,b,target\n" + "x,1,0\n" * 20, "must be numeric, these are not: a"),
        ("a,b\n" + "1,2\n" * 20, "no target column 'target'"),
        ("a,b,target\n" + "1,2,3\n" * 5, "too few rows: 5"),
        ("a,b,target\n", "has a header but no rows"),
        ("", "is empty"),
    ],
)
def test_bad_training_data(tmp_path: Path, csv: str, message: str) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_text(csv)
    with pytest.raises(train_py.TrainingError, match=message):
        train_py.train(hyperparameters(task="regression"), str(tmp_path / "train"), None, str(tmp_path / "m"))


def test_missing_feature_values_train_and_hold_out_split(tmp_path: Path) -> None:
    data = write_demo("wine", tmp_path)
    df = pd.read_csv(data.train_csv)
    df.loc[::3, "alcohol"] = None
    df.to_csv(tmp_path / "train.csv", index=False)
    meta = train_py.train(hyperparameters(), str(tmp_path / "train.csv"), None, str(tmp_path / "m"))
    assert meta["task"] == "multiclass" and meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["validation_rows"] == pytest.approx(len(df) * 0.2, abs=1)
    assert (tmp_path / "m" / "xgboost-model.json").is_file()


def test_failure_file_is_written(tmp_path: Path) -> None:
    train_py.write_failure("InvalidInput: nope", {"SM_OUTPUT_DIR": str(tmp_path / "out")})
    assert (tmp_path / "out" / "failure").read_text() == "InvalidInput: nope"
