"""What ``mlops-edge run`` is asked to do: :class:`RunOptions` and their checks, and the execution
input they become (:func:`execution_input`, validated by :func:`check_input` before anything starts)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_edge.environment.run_data import RunData

__all__ = ["MODEL_PACKAGE_ARN", "RunError", "RunOptions", "check_input", "execution_input"]

MODEL_PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[^/]+/\d+$")


class RunError(Exception):
    """A problem with the run's options or environment, reported to the user without a traceback."""


@dataclass
class RunOptions:
    devices: int = 1
    demo: str = "diabetes"
    data: Path | None = None
    target: str | None = None
    task: str = "auto"
    model_package_arn: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    state_dir: Path = Path(".local")
    #: A synthesized cloud assembly to deploy as it is (None: synthesize the CDK app, cached).
    cdk_out: Path | None = None
    report: Path | None = None
    keep: bool = False
    name: str | None = None
    timeout_s: float = 900.0
    poll_s: int = 1

    def check(self) -> None:
        if self.devices < 1:
            raise RunError("--devices must be at least 1")
        if self.data is not None and not self.target:
            raise RunError("--data needs --target: the name of the column to predict")
        if self.data is not None and not self.data.is_file():
            raise RunError(f"--data {self.data}: no such file")
        if self.cdk_out is not None and not (self.cdk_out / "manifest.json").is_file():
            raise RunError(
                f"--cdk-out {self.cdk_out}: not a cloud assembly (no manifest.json); run cdk synth"
            )
        if self.model_package_arn and not MODEL_PACKAGE_ARN.match(self.model_package_arn):
            raise RunError(
                f"--model-package {self.model_package_arn!r} is not a model package version ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )


def execution_input(options: RunOptions, dataset: Mapping[str, Any] | None, *, python: str) -> dict[str, Any]:
    """The execution input: the documented schema, with fast polls and the device's interpreter."""
    poll = {"interval_s": options.poll_s}
    document: dict[str, Any] = {
        "comment": "mlops-edge run (local cloud)",
        "components": {"inference_configuration": {"PythonPath": python, "TelemetryIntervalSeconds": 5}},
        "poll": {
            "training": {**poll, "timeout_s": 600},
            "components": {**poll, "timeout_s": 120},
            "deployment": {**poll, "timeout_s": 300},
        },
    }
    if options.hyperparameters:
        document["hyperparameters"] = dict(options.hyperparameters)
    if options.model_package_arn:
        document["model_package_arn"] = options.model_package_arn
    if dataset is not None:
        document["dataset"] = dict(dataset)
    return document


def check_input(options: RunOptions, data: RunData | None) -> None:
    """Validate the execution input against the published schema before anything starts, with
    the same check Configure runs (so ``--hp max_depth=-3`` costs a second, not a whole start-up)."""
    from pipeline.config import schema
    from pipeline.config.validation import InvalidInput, validate

    placeholder = None
    if data is not None:
        placeholder = {"train": "s3://bucket/train.csv", "target": data.target, "task": data.task}
    try:
        validate(execution_input(options, placeholder, python="python3"), schema())
    except InvalidInput as exc:
        raise RunError(str(exc)) from exc
