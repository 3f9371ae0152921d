"""Benchmark: the edge engine (ONNX Runtime, pre-bound IOBinding) against XGBoost's native predictor.

Usage: ``.venv/bin/python bench/inference.py [--json PATH] [--cpu N] [--retrain]``

Trains (or loads, cached under bench/results/models) a 300-tree depth-6 regressor and a
multiclass model with the project's own train.py and export, pins the process to one core, then
measures on the same rows: single-row latency p50/p99 of ``Engine.predict`` and of
``Booster.inplace_predict``, their ratio, batch rows/s at 1/32/1024, model load time and file
sizes. Prints a table and writes the figures as JSON. Target: engine p50 <= 10 us and >= 20x faster
than native for single rows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/xgboost load their thread pools

import argparse
import gc
import hashlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_runtime.inference.stats import percentile  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SPECS = {
    "regression": {"task": "regression", "num_round": 300, "max_depth": 6, "n_features": 20},
    "multiclass": {"task": "multiclass", "num_round": 100, "max_depth": 6, "n_features": 20, "classes": 4},
}
ROWS = 4000
TARGET_P50_US = 10.0
TARGET_RATIO = 20.0


def _pin(cpu: int | None) -> int | None:
    """One core, so figures do not depend on what else the machine runs on the other core."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None else cpus[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def _data(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification, make_regression

    n = ROWS * 5
    if spec["task"] == "regression":
        x, y = make_regression(
            n_samples=n, n_features=spec["n_features"], n_informative=12, noise=5.0, random_state=0
        )
        return x, y
    x, y = make_classification(
        n_samples=n,
        n_features=spec["n_features"],
        n_informative=12,
        n_classes=spec["classes"],
        random_state=0,
    )
    return x, np.array([f"kind_{v}" for v in y])


def build(name: str, spec: dict, retrain: bool) -> Path:
    """Train with train.py (in-process) and export; cached by a hash of the spec and train.py."""
    import pandas as pd

    from pipeline.ml.export import export_model
    from pipeline.training import TRAIN_SCRIPT
    from pipeline.training import train as train_py

    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode() + TRAIN_SCRIPT.read_bytes()).hexdigest()[
        :16
    ]
    folder = RESULTS / "models" / name
    stamp = folder / "cache-key"
    if (
        not retrain
        and stamp.is_file()
        and stamp.read_text() == key
        and (folder / "onnx" / "model.json").is_file()
    ):
        return folder
    x, y = _data(spec)
    cols = [f"f{i:02d}" for i in range(x.shape[1])]
    df = pd.DataFrame(x, columns=cols)
    df["target"] = y
    folder.mkdir(parents=True, exist_ok=True)
    split = len(df) - ROWS
    df.iloc[:split].to_csv(folder / "train.csv", index=False)
    df.iloc[split:].to_csv(folder / "validation.csv", index=False)
    hps = train_py._typed(
        {
            **train_py.DEFAULTS,
            "task": spec["task"],
            "num_round": spec["num_round"],
            "max_depth": spec["max_depth"],
            "eta": 0.1,
            "early_stopping_rounds": 0,  # exactly num_round trees: the figure is per tree count
            "nthread": 1,
        }
    )
    train_py.train(hps, str(folder / "train.csv"), str(folder / "validation.csv"), str(folder / "xgb"))
    export_model(folder / "xgb", folder / "validation.csv", folder / "onnx", name=f"bench-{name}")
    stamp.write_text(key)
    return folder


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50/p99 by the project's nearest rank, so they compare with telemetry and the pipeline report."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    us = a.tolist()
    return {
        "p50_us": _nearest_rank(us, 50),
        "p99_us": _nearest_rank(us, 99),
        "mean_us": float(a.mean()),
    }


def _nearest_rank(values: list[float], q: float) -> float:
    value = percentile(values, q)
    if value is None:
        raise ValueError("no samples to take a percentile of")
    return value


def _time_calls(fn, args: list, n: int, offset: int = 0) -> list[int]:
    clock = time.perf_counter_ns
    out = []
    m = len(args)
    for i in range(offset, offset + n):
        a = args[i % m]
        t0 = clock()
        fn(a)
        out.append(clock() - t0)
    return out


def _interleaved(engine_fn, engine_args: list, xgb_fn, xgb_args: list, n: int, blocks: int = 25) -> tuple:
    """Alternate blocks of engine and xgboost calls on the same rows, so that both see the same
    machine (other processes, cache pressure) and the ratio is fair."""
    engine_ns: list[int] = []
    xgb_ns: list[int] = []
    per_block = max(1, n // blocks)
    xgb_per_block = max(40, per_block // 20)  # ~250 us per native call: fewer, same rows
    gc.disable()
    try:
        for blk in range(blocks):
            engine_ns += _time_calls(engine_fn, engine_args, per_block, offset=blk * per_block)
            xgb_ns += _time_calls(xgb_fn, xgb_args, xgb_per_block, offset=blk * xgb_per_block)
    finally:
        gc.enable()
    return engine_ns, xgb_ns


def _rows_per_s(fn, x: np.ndarray, batch: int, budget_s: float = 0.4) -> float:
    """Rows per second predicting ``batch`` rows per call, cycling through ``x``."""
    starts = list(range(0, len(x) - batch + 1, batch)) or [0]
    fn(x[:batch])  # warm-up
    done = calls = 0
    t0 = time.perf_counter()
    while True:
        s = starts[calls % len(starts)]
        fn(x[s : s + batch])
        done += batch
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= budget_s and calls >= 3:
            return done / elapsed


def measure(name: str, folder: Path, single_n: int) -> dict:
    """All figures for one model."""
    import xgboost as xgb

    from edge_runtime.inference import Engine
    from pipeline.ml.data import load_dataset

    manifest = json.loads((folder / "onnx" / "model.json").read_text())
    engine = Engine.load(folder / "onnx")
    booster = xgb.Booster()
    booster.load_model(str(folder / "xgb" / "xgboost-model.json"))
    booster.set_param({"nthread": 1})
    booster.feature_names = None  # inplace_predict on a bare array, as a device would call it
    data = load_dataset(
        folder / "validation.csv", target="target", features=manifest["features"], classes=manifest["classes"]
    )
    x = data.x
    rows = [r.tolist() for r in x[:1000]]
    xrows = [x[i : i + 1] for i in range(1000)]
    records_json = [json.dumps(dict(zip(manifest["features"], r, strict=True))) for r in rows[:200]]

    for r in rows[:200]:  # warm-up both
        engine.predict(r)
    for r in xrows[:50]:
        booster.inplace_predict(r)

    engine_ns, xgb_ns = _interleaved(engine.predict, rows, booster.inplace_predict, xrows, single_n)
    engine_row, native = _percentiles(engine_ns), _percentiles(xgb_ns)
    variants = _single_row_variants(engine, rows, records_json, single_n // 4)
    batches = _batches(engine, booster, x)

    def load_engine() -> None:
        Engine.load(folder / "onnx")

    def load_xgb() -> None:
        b = xgb.Booster()
        b.load_model(str(folder / "xgb" / "xgboost-model.json"))

    return {
        "task": manifest["task"],
        "trees": manifest["source"]["num_boosted_rounds"]
        * (len(manifest["classes"]) if manifest["classes"] else 1),
        "features": len(manifest["features"]),
        "engine_single_row": engine_row,
        **variants,
        "xgboost_single_row": native,
        "ratio": native["p50_us"] / engine_row["p50_us"],
        "batch": batches,
        "load_ms": {
            "engine": _median_ms(load_engine, 5),
            "xgboost": _median_ms(load_xgb, 5),
        },
        "size_bytes": {
            "model.onnx": (folder / "onnx" / "model.onnx").stat().st_size,
            "model.json": (folder / "onnx" / "model.json").stat().st_size,
            "xgboost-model.json": (folder / "xgb" / "xgboost-model.json").stat().st_size,
        },
        "parity": manifest["parity"],
    }


def _single_row_variants(engine: Any, rows: list, records_json: list, n: int) -> dict[str, dict]:
    """The engine on one row in other shapes: a JSON record, one repeated row, behind a lock."""
    gc.disable()
    try:
        # One row over and over keeps the visited tree nodes in L1: the best case, reported only to
        # compare with figures measured that way; the headline uses varied rows, as a device sees.
        same = _percentiles(_time_calls(engine.predict, rows[:1], n))
        as_json = _percentiles(_time_calls(engine.predict, records_json, n))
        lock = threading.Lock()

        def locked(r: list) -> dict:
            with lock:
                return engine.predict(r)

        with_lock = _percentiles(_time_calls(locked, rows, n))
    finally:
        gc.enable()
    return {
        "engine_single_record_json": as_json,
        "engine_same_row_repeated": same,
        "engine_single_row_with_lock": with_lock,
    }


def _batches(engine: Any, booster: Any, x: Any) -> dict[str, dict]:
    """Rows per second at batch sizes 1, 32 and 1024, engine (matrix and JSON) against xgboost."""
    return {
        str(size): {
            "engine_rows_per_s": _rows_per_s(engine.predict_matrix, x, size),
            "engine_json_rows_per_s": _rows_per_s(lambda b: engine.predict({"rows": b.tolist()}), x, size),
            "xgboost_rows_per_s": _rows_per_s(booster.inplace_predict, x, size),
        }
        for size in (1, 32, 1024)
    }


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return _nearest_rank(times, 50)


def report(results: dict, cpu: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"edge engine vs xgboost native (pinned to cpu {cpu})")
    table.add_column("figure")
    for name in results:
        table.add_column(name, justify="right")

    def row(label: str, fmt) -> None:
        table.add_row(label, *[fmt(r) for r in results.values()])

    row("trees / features", lambda r: f"{r['trees']} / {r['features']}")
    row(
        "engine row p50 / p99 µs",
        lambda r: f"{r['engine_single_row']['p50_us']:.1f} / {r['engine_single_row']['p99_us']:.1f}",
    )
    row("engine one row repeated p50 µs", lambda r: f"{r['engine_same_row_repeated']['p50_us']:.1f}")
    row("engine JSON record p50 µs", lambda r: f"{r['engine_single_record_json']['p50_us']:.1f}")
    row("engine row + lock p50 µs", lambda r: f"{r['engine_single_row_with_lock']['p50_us']:.1f}")
    row(
        "xgboost row p50 / p99 µs",
        lambda r: f"{r['xgboost_single_row']['p50_us']:.1f} / {r['xgboost_single_row']['p99_us']:.1f}",
    )
    row("ratio (xgboost p50 / engine p50)", lambda r: f"{r['ratio']:.1f}×")
    for size in ("1", "32", "1024"):
        row(
            f"rows/s batch {size}: engine / xgboost",
            lambda r, s=size: (
                f"{r['batch'][s]['engine_rows_per_s']:,.0f} / {r['batch'][s]['xgboost_rows_per_s']:,.0f}"
            ),
        )
        row(
            f"rows/s batch {size}: engine JSON rows",
            lambda r, s=size: f"{r['batch'][s]['engine_json_rows_per_s']:,.0f}",
        )
    row(
        "load ms: engine / xgboost", lambda r: f"{r['load_ms']['engine']:.1f} / {r['load_ms']['xgboost']:.1f}"
    )
    row(
        "size KiB: model.onnx / xgboost json",
        lambda r: (
            f"{r['size_bytes']['model.onnx'] / 1024:.0f} / {r['size_bytes']['xgboost-model.json'] / 1024:.0f}"
        ),
    )
    row("parity max abs diff", lambda r: f"{r['parity']['max_abs_diff']:.2g}")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Write the figures to this JSON file.")
    parser.add_argument("--cpu", type=int, default=None, help="Core to pin to (default: the last allowed).")
    parser.add_argument("--single", type=int, default=30000, help="Single-row engine calls per model.")
    parser.add_argument("--retrain", action="store_true", help="Ignore the cached models.")
    parser.add_argument("--no-monitoring", action="store_true", help="Skip bench/monitoring_cost.py.")
    args = parser.parse_args(argv)

    cpu = _pin(args.cpu)
    started = time.perf_counter()
    folders = {name: build(name, spec, args.retrain) for name, spec in SPECS.items()}
    built_s = time.perf_counter() - started
    results = {name: measure(name, folder, args.single) for name, folder in folders.items()}
    main_figures = results["regression"]
    import onnxruntime
    import xgboost

    doc = {
        "engine_p50_us": main_figures["engine_single_row"]["p50_us"],
        "engine_p99_us": main_figures["engine_single_row"]["p99_us"],
        "engine_same_row_p50_us": main_figures["engine_same_row_repeated"]["p50_us"],
        "xgboost_p50_us": main_figures["xgboost_single_row"]["p50_us"],
        "xgboost_p99_us": main_figures["xgboost_single_row"]["p99_us"],
        "ratio": main_figures["ratio"],
        "targets": {"engine_p50_us_max": TARGET_P50_US, "ratio_min": TARGET_RATIO},
        "target_met": main_figures["engine_single_row"]["p50_us"] <= TARGET_P50_US
        and main_figures["ratio"] >= TARGET_RATIO,
        "pinned_cpu": cpu,
        "versions": {
            "onnxruntime": onnxruntime.__version__,
            "xgboost": xgboost.__version__,
            "python": sys.version.split()[0],
        },
        "models": results,
        "build_s": built_s,
        "total_s": time.perf_counter() - started,
    }
    report(results, cpu)
    if not args.no_monitoring:  # issue 16: monitoring's cost per served row (its own module)
        sys.path.insert(0, str(ROOT / "bench"))
        import monitoring_cost

        doc["monitoring"] = monitoring_cost.run()
    verdict = "met" if doc["target_met"] else "NOT met"
    print(
        f"regressor: engine p50 {doc['engine_p50_us']:.1f} µs, xgboost p50 {doc['xgboost_p50_us']:.1f} µs, "
        f"ratio {doc['ratio']:.1f}× — target (≤ {TARGET_P50_US:g} µs, ≥ {TARGET_RATIO:g}×) {verdict}; "
        f"{doc['total_s']:.0f} s in all"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
