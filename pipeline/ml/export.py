"""XGBoost -> ONNX export with proof: checker, numeric parity, ONNX-evaluated metrics, golden set.

``export_model`` is the core the export Lambda and ``mlops-edge export`` call (contracts §1). A
model ships only if ONNX Runtime reproduces XGBoost's own predictions on the validation set within
the tolerance; otherwise ``ParityFailed`` says by how much it missed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.ml import metrics as ml_metrics
from pipeline.ml.baseline import BASELINE_DIR, write_baseline
from pipeline.ml.data import Dataset, load_dataset
from pipeline.ml.exceptions import ExportFailed, ParityFailed

__all__ = [
    "ACCEL_FILE",
    "DEFAULT_TOLERANCE",
    "FORMAT_VERSION",
    "GOLDEN_ROWS",
    "INPUT_NAME",
    "TARGET_OPSET",
    "Tolerance",
    "export_model",
    "parity_report",
]

FORMAT_VERSION = 1
INPUT_NAME = "input"
GOLDEN_ROWS = 10
#: The accelerated variant's file name, beside model.onnx (model.json ``accelerated``).
ACCEL_FILE = "model.accel.onnx"
# opset 15 / ai.onnx.ml 3: what onnxmltools 1.16 targets, and what any onnxruntime >= 1.10 loads,
# so an older runtime on a device can still run the model.
TARGET_OPSET = {"": 15, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Tolerance:
    """Element-wise bound ``|onnx - xgboost| <= abs + rel * |xgboost|`` (numpy.isclose's rule).

    Defaults: both runtimes evaluate trees in float32, so honest differences are ~1e-7 for
    probabilities and ~1e-6 relative for regression values (DESIGN.md); a real conversion fault
    (wrong base score, missing-value branch, dropped trees) is orders of magnitude larger.
    """

    abs: float = 1e-5
    rel: float = 1e-4

    @classmethod
    def of(cls, value: Tolerance | float | dict | None) -> Tolerance:
        """Accept a Tolerance, one number for both bounds, or {"abs": .., "rel": ..}."""
        if value is None:
            return cls()
        if isinstance(value, Tolerance):
            return value
        if isinstance(value, dict):
            return cls(**{k: float(v) for k, v in value.items()})
        return cls(abs=float(value), rel=float(value))


DEFAULT_TOLERANCE = Tolerance()


def export_model(
    model_dir: str | Path,
    validation_csv: str | Path,
    out_dir: str | Path,
    *,
    tolerance: Tolerance | float | dict | None = None,
    name: str | None = None,
    golden_rows: int = GOLDEN_ROWS,
    baseline_csv: str | Path | None = None,
) -> dict:
    """Convert the training output in ``model_dir``, prove parity, write the model dir, return the manifest.

    Beside model.json and golden.json, ``baseline/statistics.json`` and ``baseline/constraints.json``
    (pipeline.ml.baseline, docs/monitoring.md) describe ``baseline_csv``, the training data when
    the caller has it; without it the validation CSV, the held-out part of the same dataset.

    Raises ``ExportFailed`` (unusable training output or invalid ONNX), ``InvalidDataset`` (bad
    validation CSV) or ``ParityFailed`` (nothing is written in that case).
    """
    tol = Tolerance.of(tolerance)
    training = _read_training(Path(model_dir))
    model = _load_xgb(Path(model_dir), training)
    data = load_dataset(
        validation_csv, target=training["target"], features=training["features"], classes=training["classes"]
    )
    onnx_bytes = convert(model, len(training["features"]))

    session = _session(onnx_bytes)
    output_names = [o.name for o in session.get_outputs()]
    onnx_out = _onnx_predict(session, data.x, training["task"])
    xgb_out = _xgb_predict(model, data.x, training["task"])
    parity = parity_report(onnx_out, xgb_out, tol)
    if not parity["passed"]:
        raise ParityFailed(
            f"ONNX Runtime and XGBoost disagree on {parity['failing']} of {parity['elements']} values "
            f"over {parity['rows']} validation rows: max abs diff {parity['max_abs_diff']:.3g}, "
            f"max rel diff {parity['max_rel_diff']:.3g}, tolerance abs {tol.abs:g} + rel {tol.rel:g}",
            parity=parity,
        )

    accel_bytes, accelerated = accelerated_variant(model, training, data.x, session, xgb_out, tol)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(onnx_bytes)
    (out / ACCEL_FILE).unlink(missing_ok=True)  # a variant from an earlier export must not linger
    if accel_bytes is not None:
        (out / ACCEL_FILE).write_bytes(accel_bytes)
    manifest = _manifest(training, name, output_names, data, onnx_out, parity, onnx_bytes)
    manifest["accelerated"] = accelerated
    _write_json(out / "model.json", manifest)
    _write_json(out / "golden.json", golden_set(out, data, training, tol, golden_rows))
    write_baseline(baseline_csv or validation_csv, list(training["features"]), out / BASELINE_DIR)
    return manifest


# ---------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------


def _read_training(model_dir: Path) -> dict:
    path = model_dir / "training.json"
    if not (model_dir / "xgboost-model.json").is_file() or not path.is_file():
        raise ExportFailed(
            f"{model_dir}: expected xgboost-model.json and training.json (the training output)"
        )
    try:
        training = json.loads(path.read_text())
    except ValueError as exc:
        raise ExportFailed(f"{path}: not valid JSON ({exc})") from exc
    missing = [k for k in ("task", "target", "features", "classes") if k not in training]
    if missing:
        raise ExportFailed(f"{path}: missing keys {', '.join(missing)}")
    if training["task"] not in ("regression", "binary", "multiclass"):
        raise ExportFailed(f"{path}: unknown task {training['task']!r}")
    return training


def _load_xgb(model_dir: Path, training: dict) -> object:
    """Load into the sklearn wrapper matching the task, so onnxmltools knows classifier from regressor."""
    import xgboost as xgb

    cls = xgb.XGBRegressor if training["task"] == "regression" else xgb.XGBClassifier
    model = cls()
    try:
        model.load_model(str(model_dir / "xgboost-model.json"))
    except Exception as exc:
        raise ExportFailed(f"{model_dir / 'xgboost-model.json'}: XGBoost cannot load it ({exc})") from exc
    booster = model.get_booster()
    if booster.num_features() != len(training["features"]):
        raise ExportFailed(
            f"model has {booster.num_features()} features, training.json lists {len(training['features'])}"
        )
    # onnxmltools reads split features as "f<index>": named features break the conversion.
    booster.feature_names = None
    booster.feature_types = None
    return model


def convert(model: object, n_features: int) -> bytes:
    """onnxmltools conversion plus ``onnx.checker``; any failure is an ``ExportFailed``."""
    import onnx
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        onnx_model = onnxmltools.convert_xgboost(
            model,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset=TARGET_OPSET[""],
        )
    except Exception as exc:
        raise ExportFailed(f"onnxmltools could not convert the model: {exc}") from exc
    onnx_model.producer_name = "mlops-edge"
    try:
        onnx.checker.check_model(onnx_model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError and, on shape inference, others
        raise ExportFailed(f"the converted ONNX model is invalid: {exc}") from exc
    return onnx_model.SerializeToString()


def _session(onnx_bytes: bytes, library: Path | None = None) -> object:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if library is not None:
        opts.register_custom_ops_library(str(library))
    try:
        return ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportFailed(f"ONNX Runtime cannot load the converted model: {exc}") from exc


def accelerated_variant(
    model: object, training: dict, x: np.ndarray, standard: object, xgb_out: np.ndarray, tol: Tolerance
) -> tuple[bytes | None, dict]:
    """``model.accel.onnx`` and its model.json entry, or None and the reason it is not shipped.

    The same gate as the standard model: within ``tol`` of XGBoost on every validation row. Also
    within ``tol`` of the standard ONNX model on those rows plus probe rows holding NaN, +inf and
    -inf in every feature (XGBoost refuses infinities, onnxruntime compares them as numbers). A
    variant is shipped only when this environment could load the library and check it.
    """
    from edge_runtime.inference import accel
    from pipeline.ml import perfect_trees

    task = training["task"]
    booster = model.get_booster()
    reason = perfect_trees.unsupported_reason(booster, task, training.get("hyperparameters"))
    library = accel.library_path()
    if reason is None and library is None:
        reason = (
            "the mlops_edge.trees library is not built where the model was exported "
            "(python -m edge_runtime.inference.accel build), so the variant could not be checked"
        )
    if reason is not None:
        return None, {"file": None, "reason": reason}
    names = [o.name for o in standard.get_outputs()]
    data = perfect_trees.build_model(perfect_trees.from_booster(booster, task, x), INPUT_NAME, names, 15)
    try:
        session = _session(data, library)
    except ExportFailed as exc:
        return None, {"file": None, "reason": f"the accelerated variant does not load: {exc}"}
    probe = np.concatenate([x, _probe_rows(x)])
    accel_out, standard_out = (_onnx_predict(s, probe, task) for s in (session, standard))
    vs_xgb = parity_report(accel_out[: len(x)], xgb_out, tol)
    vs_standard = parity_report(accel_out, standard_out, tol)
    entry = {"parity": _brief(vs_xgb), "parity_vs_standard": _brief(vs_standard)}
    if not (vs_xgb["passed"] and vs_standard["passed"]):
        return None, {"file": None, "reason": "the accelerated variant failed the parity gate", **entry}
    return data, {
        "file": ACCEL_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "op": {"domain": accel.DOMAIN, "api_version": accel.API_VERSION},
        **entry,
    }


def _probe_rows(x: np.ndarray) -> np.ndarray:
    """Rows taking NaN, +inf and -inf in each feature in turn (over the first validation rows)."""
    first = np.nan_to_num(x[:8], nan=0.0) if len(x) else np.zeros((1, x.shape[1]))
    rows = np.array(first[np.arange(3 * x.shape[1]) % len(first)], dtype=np.float32)
    for j in range(x.shape[1]):
        rows[3 * j : 3 * j + 3, j] = (np.nan, np.inf, -np.inf)
    return rows


def _brief(parity: dict) -> dict:
    return {k: parity[k] for k in ("max_abs_diff", "max_rel_diff", "tolerance", "rows", "passed")}


def _onnx_predict(session: object, x: np.ndarray, task: str) -> np.ndarray:
    """Values (n,) for regression, probabilities (n, k) for classifiers."""
    outputs = session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
    if task == "regression":
        return np.asarray(outputs[0], dtype=np.float64).reshape(-1)
    return np.asarray(outputs[1], dtype=np.float64)


def _xgb_predict(model: object, x: np.ndarray, task: str) -> np.ndarray:
    """XGBoost's own predictions on the very same float32 inputs."""
    import xgboost as xgb

    pred = model.get_booster().predict(xgb.DMatrix(x, missing=np.nan))
    pred = np.asarray(pred, dtype=np.float64)
    if task == "regression":
        return pred.reshape(-1)
    if task == "binary":
        return np.column_stack([1.0 - pred, pred])
    return pred


def parity_report(onnx_out: np.ndarray, xgb_out: np.ndarray, tol: Tolerance) -> dict:
    """Max abs/rel difference and whether every element is within ``tol``.

    The relative difference is reported only where the relative bound dominates
    (``|xgboost| >= abs / rel``): below that the absolute bound governs, and dividing by a
    near-zero probability would report noise.
    """
    a = np.asarray(onnx_out, dtype=np.float64)
    b = np.asarray(xgb_out, dtype=np.float64)
    if a.shape != b.shape:
        return {
            "passed": False,
            "max_abs_diff": math.inf,
            "max_rel_diff": math.inf,
            "tolerance": asdict(tol),
            "rows": int(b.shape[0]),
            "elements": int(b.size),
            "failing": int(b.size),
        }
    diff = np.abs(a - b)
    diff[np.isnan(a) != np.isnan(b)] = np.inf  # NaN on one side only is a mismatch
    diff[np.isnan(a) & np.isnan(b)] = 0.0
    mask = np.abs(b) >= (tol.abs / tol.rel if tol.rel > 0 else tol.abs)
    rel = diff[mask] / np.abs(b[mask]) if mask.any() else np.zeros(1)
    failing = int(np.count_nonzero(~(diff <= tol.abs + tol.rel * np.abs(b))))
    return {
        "passed": failing == 0 and b.size > 0,
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(rel.max()) if rel.size else 0.0,
        "tolerance": asdict(tol),
        "rows": int(b.shape[0]),
        "elements": int(b.size),
        "failing": failing,
    }


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------


def _manifest(
    training: dict,
    name: str | None,
    output_names: list[str],
    data: Dataset,
    onnx_out: np.ndarray,
    parity: dict,
    onnx_bytes: bytes,
) -> dict:
    import onnxruntime
    import xgboost

    return {
        "format_version": FORMAT_VERSION,
        "name": name or f"xgboost-{training['task']}",
        "task": training["task"],
        "features": list(training["features"]),
        "target": training["target"],
        "input_name": INPUT_NAME,
        "output_names": output_names,
        "classes": training["classes"],
        "metrics": {k: _finite(v) for k, v in ml_metrics.compute(training["task"], data.y, onnx_out).items()},
        "parity": _brief(parity),
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "opset": dict(TARGET_OPSET),
        "source": {
            "framework": "xgboost",
            "xgboost_version": xgboost.__version__,
            "trained_with_xgboost": training.get("xgboost_version"),
            "objective": training.get("objective"),
            "best_iteration": training.get("best_iteration"),
            "num_boosted_rounds": training.get("num_boosted_rounds"),
            "hyperparameters": training.get("hyperparameters", {}),
            "onnxruntime_version": onnxruntime.__version__,
        },
    }


def golden_set(model_out: Path, data: Dataset, training: dict, tol: Tolerance, n: int) -> dict:
    """A few validation rows and the edge engine's answers to them, for on-device verification.

    Expected outputs come from the engine itself (the code that runs on the device), so the
    verification compares like with like. Rows with missing values are included when the data has
    them (as JSON null), since the device must handle them the same way.
    """
    from edge_runtime.inference import Engine

    x = data.x
    has_nan = np.isnan(x).any(axis=1)
    picks = list(range(min(n, len(x))))
    with_missing = [int(i) for i in np.flatnonzero(has_nan)[:2]]
    for slot, idx in enumerate(with_missing):
        if idx not in picks and picks:
            picks[-(slot + 1)] = idx
    rows = [[None if math.isnan(v) else float(v) for v in x[i].tolist()] for i in sorted(picks)]
    engine = Engine.load(model_out, accelerated=False)  # the reference every device is held to
    expected = engine.predict({"rows": rows})["predictions"]
    return {
        "features": list(training["features"]),
        "task": training["task"],
        "rows": rows,
        "expected": expected,
        "tolerance": asdict(tol),
    }


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined metric (e.g. R² of one row) is null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n")
