"""The run's dataset: a bundled demo, or the user's CSV checked and split before anything starts.

Checking here, before the local cloud or any device is started, means a bad CSV costs a second and
leaves nothing half-done; the pipeline's own checks (train.py, export) still apply on AWS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ml.exceptions import InvalidDataset

TASKS = ("auto", "regression", "binary", "multiclass")


@dataclass(frozen=True)
class RunData:
    name: str
    task: str
    target: str
    train_csv: Path
    validation_csv: Path

    def digest(self) -> str:
        h = hashlib.sha256()
        for path in (self.train_csv, self.validation_csv):
            h.update(path.read_bytes())
        return h.hexdigest()[:12]


def demo_data(name: str, out_dir: Path) -> RunData:
    from pipeline.ml.datasets import write_demo

    demo = write_demo(name, out_dir)
    return RunData(demo.name, demo.task, demo.target, demo.train_csv, demo.validation_csv)


def user_data(
    csv: Path, *, target: str, task: str, out_dir: Path, validation_fraction: float = 0.2
) -> RunData:
    """Validate ``csv`` (target present, numeric features, enough rows) and split it, seeded."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from pipeline.ml.data import check_target, load_csv

    df = load_csv(csv)
    if target not in df.columns:
        raise InvalidDataset(
            f"{csv}: no target column {target!r} (columns: {', '.join(map(str, df.columns))})"
        )
    features = [c for c in df.columns if c != target]
    if not features:
        raise InvalidDataset(f"{csv}: only the target column; there is nothing to learn from")
    bad = [c for c in features if not (pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().all())]
    if bad:
        raise InvalidDataset(
            f"{csv}: feature columns must be numeric, these are not: {', '.join(map(str, bad))}"
        )
    if df[target].isna().any():
        raise InvalidDataset(
            f"{csv}: target column {target!r} has {int(df[target].isna().sum())} missing values"
        )
    if len(df) < 20:
        raise InvalidDataset(f"{csv}: {len(df)} rows; at least 20 are needed to train and validate")
    resolved = check_target(df[target], task=task, source=csv)  # constant, single class, ... refused now
    stratify: Any = None
    if resolved in ("binary", "multiclass") and df[target].value_counts().min() >= 2:
        stratify = df[target]
    train, valid = train_test_split(df, test_size=validation_fraction, random_state=7, stratify=stratify)
    folder = out_dir / "user"
    folder.mkdir(parents=True, exist_ok=True)
    train_csv, valid_csv = folder / "train.csv", folder / "validation.csv"
    train.to_csv(train_csv, index=False)
    valid.to_csv(valid_csv, index=False)
    return RunData(csv.stem, task, target, train_csv, valid_csv)


def upload(s3: Any, bucket: str, data: RunData) -> dict[str, str]:
    """Upload to content-addressed keys; returns the execution input's ``dataset`` section."""
    prefix = f"datasets/{data.name}/{data.digest()}"
    s3.upload_file(str(data.train_csv), bucket, f"{prefix}/train.csv")
    s3.upload_file(str(data.validation_csv), bucket, f"{prefix}/validation.csv")
    return {
        "train": f"s3://{bucket}/{prefix}/train.csv",
        "validation": f"s3://{bucket}/{prefix}/validation.csv",
        "target": data.target,
        "task": data.task,
    }
