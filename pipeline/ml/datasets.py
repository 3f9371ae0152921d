"""Demo datasets bundled with scikit-learn, written as CSVs (nothing is downloaded).

diabetes -> regression, breast_cancer -> binary, wine -> multiclass with string labels
("class_0", ...) so that label mapping is exercised end to end. Splits are seeded, so the same
call always writes the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split

__all__ = ["DEMOS", "DemoData", "write_demo", "write_demos"]

TARGET = "target"


@dataclass(frozen=True)
class DemoData:
    """Where one demo's CSVs are and how to train on them."""

    name: str
    task: str
    train_csv: Path
    validation_csv: Path
    target: str = TARGET


# name -> (task, loader, string labels?)
DEMOS: dict[str, tuple[str, str, bool]] = {
    "diabetes": ("regression", "load_diabetes", False),
    "breast_cancer": ("binary", "load_breast_cancer", False),
    "wine": ("multiclass", "load_wine", True),
}


def _frame(name: str) -> pd.DataFrame:
    _task, loader, string_labels = DEMOS[name]
    bunch = getattr(skd, loader)(as_frame=True)
    df = bunch.frame.copy()
    df.columns = [_clean(c) for c in df.columns]
    if string_labels:
        df[TARGET] = [str(bunch.target_names[int(i)]) for i in df[TARGET]]
    return df


def _clean(name: str) -> str:
    """Feature names become JSON keys on the device: keep them plain (no spaces or slashes)."""
    return str(name).strip().replace(" ", "_").replace("/", "_per_")


def write_demo(
    name: str, out_dir: str | Path, *, seed: int = 7, validation_fraction: float = 0.25
) -> DemoData:
    """Write ``<out_dir>/<name>/{train,validation}.csv`` and describe them."""
    if name not in DEMOS:
        raise KeyError(f"unknown demo dataset {name!r}; choose from {', '.join(DEMOS)}")
    task = DEMOS[name][0]
    df = _frame(name)
    stratify = df[TARGET] if task != "regression" else None
    train, valid = train_test_split(df, test_size=validation_fraction, random_state=seed, stratify=stratify)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    train_csv, valid_csv = folder / "train.csv", folder / "validation.csv"
    train.to_csv(train_csv, index=False, float_format="%.10g")
    valid.to_csv(valid_csv, index=False, float_format="%.10g")
    return DemoData(name=name, task=task, train_csv=train_csv, validation_csv=valid_csv)


def write_demos(out_dir: str | Path) -> list[DemoData]:
    """All three demos, in a fixed order."""
    return [write_demo(name, out_dir) for name in DEMOS]
