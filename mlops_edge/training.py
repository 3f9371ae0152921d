"""Run ``pipeline/training/train.py`` on this machine under the SageMaker script-mode contract.

``mlops-edge train`` and ``mlops-edge demo`` use this instead of importing train.py, so what runs on
a laptop is exactly what SageMaker (or the local cloud) runs: a separate process, an /opt/ml-like
root and ``SM_*`` variables from the one definition of the contract
(:mod:`local_cloud.services.sagemaker.container`), hyperparameters as strings, metrics parsed from
stdout, the failure file read back.
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

from local_cloud.services.sagemaker.container import lay_out, script_mode_env
from pipeline.ml.exceptions import TrainingFailed
from pipeline.training import TRAIN_SCRIPT

__all__ = ["METRIC_RE", "TrainingFailed", "TrainingResult", "run_training"]

METRIC_RE = re.compile(r"^#metric (?P<name>[\w:.-]+)=(?P<value>[-0-9.eE+naninf]+)\s*$", re.MULTILINE)


@dataclass
class TrainingResult:
    """What a finished job left behind."""

    model_dir: Path
    metrics: dict[str, float]
    stdout: str
    training: dict = field(default_factory=dict)


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
    lay_out(job_root, list(channels), hps)
    env = {**os.environ, **script_mode_env(job_root, list(channels), hps, job_name=job_root.name)}
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
