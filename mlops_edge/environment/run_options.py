"""What ``mlops-edge run`` is asked to do: :class:`RunOptions` and their checks, and the execution
input they become (:func:`execution_input`, validated by :func:`check_input` before anything starts)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_edge.environment.fleet import THING_PREFIX, thing_names
from mlops_edge.environment.run_data import RunData

__all__ = [
    "MAX_DEVICES",
    "MODEL_PACKAGE_ARN",
    "RunError",
    "RunOptions",
    "check_input",
    "execution_input",
    "rollout_section",
]

#: Full simulated devices one run starts (each its own core and inference component process).
MAX_DEVICES = 100

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
    #: The first wait of the components and deployment loops, doubling up to ``poll_s``.
    first_poll_s: float = 0.25
    #: ``--canary K``: a canary stage of K devices, then the rest of the fleet (None: one stage).
    canary: int | None = None
    #: ``--fail-devices``: devices whose installs fail (fault injection, for demonstrations/tests),
    #: as given: full thing names or their numbers (``3`` is ``mlops-edge-device-03``).
    fail_devices: tuple[str, ...] = ()

    def check(self) -> None:
        if not 1 <= self.devices <= MAX_DEVICES:
            raise RunError(f"--devices must be between 1 and {MAX_DEVICES}, not {self.devices}")
        if self.canary is not None and not 1 <= self.canary < self.devices:
            raise RunError(
                f"--canary {self.canary}: the canary stage takes 1 to {self.devices - 1} of the "
                f"--devices ({self.devices}), so the fleet stage after it has at least one device"
            )
        self.faulty()
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

    def faulty(self) -> list[str]:
        """The thing names ``--fail-devices`` names, checked against this run's devices."""
        names = thing_names(self.devices)
        out: list[str] = []
        for item in self.fail_devices:
            name = f"{THING_PREFIX}{int(item):02d}" if item.isdigit() else item
            if name not in names:
                raise RunError(
                    f"--fail-devices {item!r}: not a device of this run; with --devices {self.devices} "
                    f"they are {names[0]} … {names[-1]} (or their numbers 1 … {self.devices})"
                )
            if name not in out:
                out.append(name)
        return out


def rollout_section(canary: int) -> dict[str, Any]:
    """``--canary K``: the interface's two stages, K devices of the fleet group, then the rest."""
    return {"stages": [{"name": "canary", "canary": {"devices": canary}}, {"name": "fleet"}]}


def execution_input(options: RunOptions, dataset: Mapping[str, Any] | None, *, python: str) -> dict[str, Any]:
    """The execution input: the documented schema, with fast polls (a back-off from 0.25 s where a
    function computes the next check's time, pipeline/config/polling.py) and the device's interpreter."""
    poll = {"interval_s": options.poll_s}
    backoff = {**poll, "first_interval_s": min(options.first_poll_s, options.poll_s)}
    document: dict[str, Any] = {
        "comment": "mlops-edge run (local cloud)",
        "components": {"inference_configuration": {"PythonPath": python, "TelemetryIntervalSeconds": 5}},
        "poll": {
            "training": {**poll, "timeout_s": 600},
            "components": {**backoff, "timeout_s": 120},
            "deployment": {**backoff, "timeout_s": 300},
        },
    }
    if options.hyperparameters:
        document["hyperparameters"] = dict(options.hyperparameters)
    if options.model_package_arn:
        document["model_package_arn"] = options.model_package_arn
    if dataset is not None:
        document["dataset"] = dict(dataset)
    if options.canary is not None and "rollout" not in document:
        document["rollout"] = rollout_section(options.canary)
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
