"""CSV loading and validation: every bad file gets an InvalidDataset that names the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.ml.data import load_csv, load_dataset
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
