"""Small, fast models for the ML and engine tests: train.py's own ``train`` run in-process.

The subprocess (the real SageMaker contract) is covered once in tests/integration/training; here
speed matters, so the same function is called directly with small ``num_round``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.ml.datasets import DemoData, write_demo
from pipeline.ml.export import export_model
from pipeline.training import train as train_py


@dataclass
class Built:
    """A demo dataset, its training output and its exported model directory."""

    data: DemoData
    model_dir: Path
    out_dir: Path
    manifest: dict


def hyperparameters(**overrides: object) -> dict:
    """train.py's defaults, typed and range-checked exactly as a job would see them."""
    return train_py._typed({**train_py.DEFAULTS, "num_round": 15, "nthread": 1, **overrides})


def build(root: Path, name: str, *, export: bool = True, **overrides: object) -> Built:
    """Write the demo CSVs, train on them in-process and (optionally) export."""
    data = write_demo(name, root / "data")
    model_dir = root / "train" / name
    train_py.train(
        hyperparameters(task=data.task, **overrides),
        str(data.train_csv),
        str(data.validation_csv),
        str(model_dir),
    )
    out_dir = root / "onnx" / name
    manifest = export_model(model_dir, data.validation_csv, out_dir) if export else {}
    return Built(data=data, model_dir=model_dir, out_dir=out_dir, manifest=manifest)
