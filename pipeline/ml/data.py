"""Reading and validating tabular CSVs for export and evaluation.

train.py has its own copy of these rules (it must stay self-contained for SageMaker); this module
gives the rest of the pipeline the same checks with ``InvalidDataset`` errors a person can act on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ml.exceptions import InvalidDataset

__all__ = ["MIN_ROWS", "Dataset", "check_target", "load_csv", "load_dataset"]

MIN_ROWS = 2


@dataclass(frozen=True)
class Dataset:
    """Features as float32 (what the ONNX model takes) and labels encoded against ``classes``."""

    x: np.ndarray
    y: np.ndarray
    features: list[str]
    classes: list | None


def load_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV with a header row, turning pandas' errors into ``InvalidDataset``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataset(f"{path}: no such file")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise InvalidDataset(f"{path}: the file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidDataset(f"{path}: not a readable CSV ({exc})") from exc
    if df.shape[0] == 0:
        raise InvalidDataset(f"{path}: a header but no rows")
    return df


def load_dataset(
    path: str | Path,
    *,
    target: str,
    features: list[str],
    classes: list | None = None,
    min_rows: int = MIN_ROWS,
) -> Dataset:
    """Load ``path`` with exactly the model's features (any column order) and the encoded target."""
    df = load_csv(path)
    if target not in df.columns:
        raise InvalidDataset(
            f"{path}: no target column {target!r} (columns: {', '.join(map(str, df.columns))})"
        )
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise InvalidDataset(f"{path}: missing feature columns the model needs: {', '.join(missing)}")
    bad = [f for f in features if not _numeric(df[f])]
    if bad:
        raise InvalidDataset(f"{path}: feature columns must be numeric, these are not: {', '.join(bad)}")
    if len(df) < min_rows:
        raise InvalidDataset(f"{path}: too few rows: {len(df)} (need at least {min_rows})")
    y_raw = df[target]
    if y_raw.isna().any():
        raise InvalidDataset(f"{path}: target column {target!r} has {int(y_raw.isna().sum())} missing values")
    x = df[features].astype("float64").to_numpy().astype(np.float32)
    return Dataset(x=x, y=_encode(y_raw, classes, path), features=list(features), classes=classes)


def check_target(y: pd.Series, *, task: str = "auto", source: str | Path = "dataset") -> str:
    """Refuse up front a target no model can be trained on; returns the task training will use.

    train.py refuses these too, but only once a training job runs (20-30 s into ``mlops-edge run``):
    a target with one value in every row (constant, or a single class), a ``binary`` task without
    exactly two classes, and a class with a single row (the seeded, stratified split needs one row
    for training and one for validation). ``task="auto"`` is resolved as train.py resolves it.
    """
    from pipeline.training.train import infer_task  # the training job's own rule for task=auto

    name = y.name
    present = y.dropna()
    if present.empty:
        raise InvalidDataset(f"{source}: target column {name!r} has no values")
    counts = Counter(_plain(v) for v in present.tolist())  # labels as train.py reads them
    distinct = list(counts)
    if len(distinct) == 1:
        raise InvalidDataset(
            f"{source}: target column {name!r} is {distinct[0]!r} in every row: there is nothing to "
            "learn (a model needs at least two different target values; for a classifier, two classes)"
        )
    resolved = infer_task(present) if task == "auto" else task
    if resolved == "regression":
        if not pd.api.types.is_numeric_dtype(present):
            raise InvalidDataset(
                f"{source}: regression needs a numeric target, got values like {present.iloc[0]!r}"
            )
        return resolved
    if resolved == "binary" and len(counts) != 2:
        shown = ", ".join(map(repr, distinct[:10]))
        raise InvalidDataset(
            f"{source}: task binary needs exactly two classes, target column {name!r} has "
            f"{len(counts)}: {shown}; use --task multiclass"
        )
    single = [label for label, n in counts.items() if n < 2]
    if single:
        shown = ", ".join(map(repr, single[:10]))
        raise InvalidDataset(
            f"{source}: class {shown} of target column {name!r} has a single row; every class needs "
            "at least two (one to train on, one to validate with)"
        )
    return resolved


def _numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or col.isna().all())


def _plain(value: object) -> object:
    """Same normalisation train.py applies to labels, so '1' read as 1.0 still matches class 1."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _encode(y: pd.Series, classes: list | None, path: str | Path) -> np.ndarray:
    if classes is None:
        if not pd.api.types.is_numeric_dtype(y):
            raise InvalidDataset(f"{path}: regression needs a numeric target, got values like {y.iloc[0]!r}")
        return y.to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    codes = [index.get(_plain(v), -1) for v in y.tolist()]
    unseen = sorted({str(v) for v, c in zip(y.tolist(), codes, strict=True) if c < 0})
    if unseen:
        raise InvalidDataset(f"{path}: labels the model was not trained on: {', '.join(unseen[:10])}")
    return np.asarray(codes, dtype=np.int64)
