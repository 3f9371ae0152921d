"""Run ``pipeline/training/train.py`` locally under the SageMaker script-mode contract.

The CLI and the demo use this instead of importing train.py, so what runs on a laptop is exactly
what SageMaker (or the local cloud) runs: a separate process, an /opt/ml-like root, ``SM_*``
variables, hyperparameters as strings, metrics parsed from stdout, the failure file read back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ml.exceptions import MLError
from pipeline.training import TRAIN_SCRIPT

__all__ = ["METRIC_RE", "TrainingFailed", "TrainingResult", "job_env", "run_training"]

METRIC_RE = re.compile(r"^#metric (?P<name>[\w:.-]+)=(?P<value>[-0-9.eE+naninf]+)\s*$", re.MULTILINE)


class TrainingFailed(MLError):
    """The training program exited non-zero; the message is its failure file."""


@dataclass
class TrainingResult:
    """What a finished job left behind."""

    model_dir: Path
    metrics: dict[str, float]
    stdout: str
    training: dict = field(default_factory=dict)


def job_env(job_root: Path, hyperparameters: dict, channels: list[str]) -> dict[str, str]:
    """The ``SM_*`` environment SageMaker's training toolkit gives a script-mode program."""
    return {
        "SM_MODEL_DIR": str(job_root / "model"),
        "SM_OUTPUT_DIR": str(job_root / "output"),
        "SM_OUTPUT_DATA_DIR": str(job_root / "output" / "data"),
        "SM_INPUT_DIR": str(job_root / "input"),
        "SM_INPUT_CONFIG_DIR": str(job_root / "input" / "config"),
        "SM_HPS": json.dumps(hyperparameters, sort_keys=True),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        **{f"SM_CHANNEL_{c.upper()}": str(job_root / "input" / "data" / c) for c in channels},
    }


def run_training(
    train_csv: str | Path,
    job_root: str | Path,
    *,
    validation_csv: str | Path | None = None,
    hyperparameters: dict | None = None,
    timeout_s: float = 600.0,
) -> TrainingResult:
    """Lay out ``job_root`` like /opt/ml, run train.py, return its model dir and metrics."""
    job_root = Path(job_root)
    hps = {k: str(v) for k, v in (hyperparameters or {}).items()}  # the API only carries strings
    channels = {"train": Path(train_csv)}
    if validation_csv is not None:
        channels["validation"] = Path(validation_csv)
    for name, src in channels.items():
        if not src.is_file():
            raise TrainingFailed(f"{name} data {src}: no such file")
        dest = job_root / "input" / "data" / name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / f"{name}.csv")
    config = job_root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hps, sort_keys=True))
    (job_root / "output" / "data").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **job_env(job_root, hps, list(channels))}
    args = [sys.executable, str(TRAIN_SCRIPT)]
    for key, value in sorted(hps.items()):
        args += [f"--{key}", value]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    failure = job_root / "output" / "failure"
    if proc.returncode != 0:
        reason = failure.read_text().strip() if failure.exists() else proc.stderr.strip()[-2000:]
        raise TrainingFailed(f"training failed: {reason}")
    metrics = {m["name"]: float(m["value"]) for m in METRIC_RE.finditer(proc.stdout)}
    model_dir = job_root / "model"
    training = json.loads((model_dir / "training.json").read_text())
    return TrainingResult(model_dir=model_dir, metrics=metrics, stdout=proc.stdout, training=training)
