"""The demo: for each bundled dataset, train (script mode), export, prove parity, predict.

This is what README command 1 runs until the full pipeline exists. The engine's answers to the
golden rows are checked against golden.json, so the demo proves the whole model path, not only
that each step exits 0.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ml.datasets import DEMOS, write_demo

__all__ = ["DemoResult", "golden_mismatches", "run_demo"]


@dataclass
class DemoResult:
    """One dataset's outcome."""

    name: str
    task: str
    model_dir: Path
    manifest: dict
    example_input: dict
    example_output: dict
    golden_checked: int
    seconds: float
    train_metrics: dict[str, float] = field(default_factory=dict)


def golden_mismatches(expected: list[dict], actual: list[dict], tol: dict) -> list[str]:
    """Describe every golden prediction that differs beyond tolerance (empty list: all match)."""
    problems = []
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        if "value" in want:
            pairs = [("value", want["value"], got.get("value"))]
        else:
            if want["class"] != got.get("class"):
                problems.append(f"row {i}: class {got.get('class')!r}, expected {want['class']!r}")
                continue
            pairs = [(k, v, got["probabilities"].get(k)) for k, v in want["probabilities"].items()]
        for key, a, b in pairs:
            if b is None or not math.isclose(b, a, rel_tol=tol["rel"], abs_tol=tol["abs"]):
                problems.append(f"row {i}: {key} = {b}, expected {a}")
    return problems


def run_demo(
    workdir: str | Path,
    *,
    names: list[str] | None = None,
    num_round: int = 60,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[DemoResult]:
    """Run the demo for ``names`` (default: all) under ``workdir``; raise ``MLError`` on failure."""
    from edge_runtime.inference import Engine
    from mlops_edge.training import run_training
    from pipeline.ml.exceptions import MLError
    from pipeline.ml.export import export_model

    workdir = Path(workdir)
    results = []
    for name in names or list(DEMOS):
        started = time.perf_counter()
        data = write_demo(name, workdir / "data")
        progress(f"{name}: training a {data.task} model (SageMaker script mode, subprocess)")
        job = run_training(
            data.train_csv,
            workdir / "jobs" / name,
            validation_csv=data.validation_csv,
            hyperparameters={
                "target": data.target,
                "task": data.task,
                "num_round": num_round,
                "eta": 0.1,
                "max_depth": 4,
                "early_stopping_rounds": 10,
            },
        )
        progress(f"{name}: exporting to ONNX and proving parity on {data.validation_csv.name}")
        out = workdir / "models" / name
        manifest = export_model(job.model_dir, data.validation_csv, out, name=f"demo-{name}")
        golden = json.loads((out / "golden.json").read_text())
        engine = Engine.load(out)
        answers = engine.predict({"rows": golden["rows"]})["predictions"]
        problems = golden_mismatches(golden["expected"], answers, golden["tolerance"])
        if problems:
            raise MLError(f"{name}: the engine disagrees with golden.json: {'; '.join(problems[:5])}")
        example = dict(zip(golden["features"], golden["rows"][0], strict=True))
        output = engine.predict(json.dumps(example))["predictions"][0]
        progress(f"{name}: engine answers {len(answers)} golden rows correctly")
        results.append(
            DemoResult(
                name=name,
                task=data.task,
                model_dir=out,
                manifest=manifest,
                example_input=example,
                example_output=output,
                golden_checked=len(answers),
                seconds=time.perf_counter() - started,
                train_metrics=job.metrics,
            )
        )
    return results
