"""CSV loading and validation: every bad file gets an InvalidDataset that names the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.ml.data import check_target, load_csv, load_dataset
from pipeline.ml.exceptions import InvalidDataset


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("a,b,target\n", "a header but no rows"),
        ('a,b,target\n1,"2,3\n', "not a readable CSV"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message):
        load_csv(_csv(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataset, match="no such file"):
        load_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("a,b\n1,2\n3,4\n", {}, r"no target column 'target' \(columns: a, b\)"),
        ("a,target\n1,2\n3,4\n", {}, "missing feature columns the model needs: b"),
        ("a,b,target\nx,1,2\ny,2,3\n", {}, "must be numeric, these are not: a"),
        ("a,b,target\n1,1,2\n", {}, r"too few rows: 1 \(need at least 2\)"),
        ("a,b,target\n1,1,\n2,2,3\n", {}, "has 1 missing values"),
        ("a,b,target\n1,1,x\n2,2,y\n", {}, "regression needs a numeric target"),
        ("a,b,target\n1,1,x\n2,2,z\n", {"classes": ["x", "y"]}, "not trained on: z"),
    ],
)
def test_invalid_datasets(tmp_path: Path, text: str, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message):
        load_dataset(_csv(tmp_path, text), target="target", features=["a", "b"], **kwargs)


def test_columns_in_any_order_missing_values_and_labels(tmp_path: Path) -> None:
    path = _csv(tmp_path, "target,b,a\nyes,1,\nno,2,3.5\nyes,,1\n")
    ds = load_dataset(path, target="target", features=["a", "b"], classes=["no", "yes"])
    assert ds.x.dtype == np.float32 and ds.x.shape == (3, 2)
    np.testing.assert_array_equal(ds.x[1], [3.5, 2.0])
    assert np.isnan(ds.x[0, 0]) and np.isnan(ds.x[2, 1])
    assert ds.y.tolist() == [1, 0, 1]


def test_integer_labels_read_as_floats_still_match(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,target\n1,1.0\n2,0.0\n")
    assert load_dataset(path, target="target", features=["a"], classes=[0, 1]).y.tolist() == [1, 0]


def _target(values: list) -> pd.Series:
    return pd.Series(values, name="target")


@pytest.mark.parametrize(
    ("values", "task", "message"),
    [
        ([3.5] * 30, "auto", r"target column 'target' is 3.5 in every row: there is nothing to learn"),
        ([3.5] * 30, "regression", "is 3.5 in every row"),
        ([1] * 30, "binary", "is 1 in every row"),
        (["yes"] * 30, "auto", "is 'yes' in every row"),
        ([1.0, 1] * 15, "binary", "is 1 in every row"),  # 1.0 and 1 are one class, as train.py reads them
        ([None] * 29 + [2.0], "auto", "is 2 in every row"),
        ([None] * 30, "auto", "has no values"),
        ([0, 1, 2] * 10, "binary", "task binary needs exactly two classes, target column 'target' has 3"),
        ([0] * 29 + [1], "binary", "class 1 of target column 'target' has a single row"),
        (["a"] * 20 + ["b"] * 9 + ["c"], "auto", "class 'c' of target column 'target' has a single row"),
        (["x", "y"] * 15, "regression", "regression needs a numeric target"),
    ],
)
def test_targets_no_model_can_learn_are_refused_up_front(values: list, task: str, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message):
        check_target(_target(values), task=task, source="d.csv")


@pytest.mark.parametrize(
    ("values", "task", "resolved"),
    [
        ([0.5, 1.5, 2.25] * 10, "auto", "regression"),
        ([0, 1] * 15, "auto", "binary"),
        (["a", "b", "c"] * 10, "auto", "multiclass"),
        ([0, 1] * 15, "regression", "regression"),
        ([0, 1, None] * 10, "binary", "binary"),
    ],
)
def test_learnable_targets_pass_and_the_task_is_resolved_as_training_does(
    values: list, task: str, resolved: str
) -> None:
    assert check_target(_target(values), task=task) == resolved


def test_the_classes_training_refuses_are_the_ones_refused_up_front() -> None:
    """train.py keeps its own copy of the rules (SageMaker runs it alone): the two agree."""
    from pipeline.training import train as train_py

    for values in ([1] * 30, [0, 1, 2] * 10):
        y = _target(values)
        with pytest.raises(InvalidDataset):
            check_target(y, task="binary")
        with pytest.raises(train_py.TrainingError):
            train_py.encode_labels(y, "binary")
