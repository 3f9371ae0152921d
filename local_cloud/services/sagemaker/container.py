"""What SageMaker's training toolkit gives a script-mode program: the /opt/ml layout and ``SM_*``.

One definition of the contract (docs/contracts.md §7) for both places that run ``train.py`` the way
the framework container does: a training job of the local cloud, and ``mlops-edge train`` on a
laptop with no cloud at all. Nothing here knows what the program trains.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["HOST", "lay_out", "script_mode_env"]

#: The single host of a one-instance job, as the toolkit names it.
HOST = "algo-1"


def lay_out(root: Path, channels: Sequence[str], hyperparameters: Mapping[str, str]) -> Path:
    """Create the /opt/ml-like tree under ``root``; returns the input config directory."""
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters), sort_keys=True))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {} for c in channels}))
    for sub in ("model", "output", "output/data", *(f"input/data/{c}" for c in channels)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return config


def script_mode_env(
    root: Path,
    channels: Sequence[str],
    hyperparameters: Mapping[str, Any],
    *,
    job_name: str,
    entry_point: str = "train.py",
    module_dir: str = "",
) -> dict[str, str]:
    """The ``SM_*`` environment of a script-mode program whose job root is ``root``.

    ``hyperparameters`` are the user's (decoded, without the ``sagemaker_*`` keys), as the toolkit
    passes them in ``SM_HPS``.
    """
    env = {
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
        "SM_INPUT_DIR": str(root / "input"),
        "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(dict(hyperparameters), sort_keys=True),
        "SM_USER_ENTRY_POINT": entry_point,
        "SM_MODULE_DIR": module_dir,
        "SM_CURRENT_HOST": HOST,
        "SM_HOSTS": json.dumps([HOST]),
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_TRAINING_ENV": json.dumps({"job_name": job_name, "hyperparameters": dict(hyperparameters)}),
        "TRAINING_JOB_NAME": job_name,
        "PYTHONUNBUFFERED": "1",
    }
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(root / "input" / "data" / channel)
    return env
