"""SageMaker script-mode training entry point for XGBoost (regression, binary, multiclass).

This file is shipped alone inside ``sourcedir.tar.gz`` and run by SageMaker's XGBoost framework
container (1.7-1) as well as by the local cloud, so it imports only xgboost, pandas, numpy and
scikit-learn, keeps to Python 3.8 syntax at run time and avoids xgboost-3-only APIs. That is also
why it is one file of more than 400 lines: SageMaker runs ``sagemaker_program`` from the tarball,
and a module split would need a package layout the container's entry point does not import.

Contract (docs/contracts.md §1 and §7):

* hyperparameters: ``SM_HPS`` (JSON), then ``$SM_INPUT_CONFIG_DIR/hyperparameters.json``
  (default ``/opt/ml/input/config``), then CLI arguments (``--num_round 50``), later wins;
* data: CSV files with a header row in ``SM_CHANNEL_TRAIN`` and, optionally,
  ``SM_CHANNEL_VALIDATION`` (else ``validation_fraction`` of train is held out);
* output: ``SM_MODEL_DIR/xgboost-model.json`` and ``SM_MODEL_DIR/training.json``;
* metrics: lines ``#metric validation:<name>=<value>`` on stdout for ``MetricDefinitions``;
* failure: the reason in ``$SM_OUTPUT_DIR/failure`` (default ``/opt/ml/output/failure``), exit 1.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import traceback

import numpy as np
import pandas as pd

TASKS = ("regression", "binary", "multiclass", "auto")
DEFAULTS = {
    "target": "target",
    "task": "auto",
    "num_round": 100,
    "max_depth": 6,
    "eta": 0.3,
    "early_stopping_rounds": 10,
    "validation_fraction": 0.2,
    "seed": 42,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "nthread": 0,
}
# Integer-valued numeric targets with at most this many distinct values are classes under "auto".
AUTO_MAX_CLASSES = 20
MIN_TRAIN_ROWS = 10
MIN_VALIDATION_ROWS = 2


class TrainingError(Exception):
    """A problem with the job's input that the user must fix; its message goes to the failure file."""


# ---------------------------------------------------------------------------------------------
# hyperparameters
# ---------------------------------------------------------------------------------------------


def _decode(value: object) -> object:
    """SageMaker passes every hyperparameter as a string; the Python SDK JSON-encodes string values
    ('"cultivar"'). Only those are decoded: a target column named "true" or "1" stays a name, and
    numbers are cast by ``_typed``."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _to_int(value: object) -> int:
    """'5', 5, 5.0 and '5.0' are all 5 rounds; 5.5 is an error."""
    try:
        return int(value)
    except (TypeError, ValueError):
        number = float(value)
        if not number.is_integer():
            raise ValueError("not an integer") from None
        return int(number)


def read_hyperparameters(argv: list[str] | None = None, env: dict | None = None) -> dict:
    """Merge defaults < hyperparameters.json < SM_HPS < CLI args, and type-check the result."""
    env = os.environ if env is None else env
    merged: dict = dict(DEFAULTS)
    config_dir = env.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
    path = os.path.join(config_dir, "hyperparameters.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            try:
                merged.update({k: _decode(v) for k, v in json.load(fh).items()})
            except ValueError as exc:
                raise TrainingError(f"hyperparameters.json is not valid JSON: {exc}") from exc
    if env.get("SM_HPS"):
        try:
            merged.update({k: _decode(v) for k, v in json.loads(env["SM_HPS"]).items()})
        except ValueError as exc:
            raise TrainingError(f"SM_HPS is not valid JSON: {exc}") from exc
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in DEFAULTS:
        parser.add_argument("--" + key, dest=key, default=None)
    known, _unknown = parser.parse_known_args(argv)  # the toolkit may pass extra args
    merged.update({k: _decode(v) for k, v in vars(known).items() if v is not None})
    return _typed(merged)


def _typed(hps: dict) -> dict:
    """Coerce and range-check, so a bad value fails before any data is read."""
    out = dict(hps)
    casts = {
        "num_round": _to_int,
        "max_depth": _to_int,
        "early_stopping_rounds": _to_int,
        "seed": _to_int,
        "nthread": _to_int,
        "eta": float,
        "validation_fraction": float,
        "min_child_weight": float,
        "subsample": float,
    }
    for key, cast in casts.items():
        try:
            out[key] = cast(out[key])
        except (TypeError, ValueError) as exc:
            kind = "integer" if cast is _to_int else "number"
            raise TrainingError(f"hyperparameter {key}={out[key]!r} is not a valid {kind}") from exc
    out["target"] = str(out["target"])
    out["task"] = str(out["task"]).lower()
    if out["task"] not in TASKS:
        raise TrainingError(
            "hyperparameter task={!r} must be one of {}".format(out["task"], ", ".join(TASKS))
        )
    if out["num_round"] < 1:
        raise TrainingError("hyperparameter num_round must be >= 1")
    if not 0.0 < out["validation_fraction"] < 1.0:
        raise TrainingError("hyperparameter validation_fraction must be between 0 and 1")
    if out["early_stopping_rounds"] < 0:
        raise TrainingError("hyperparameter early_stopping_rounds must be >= 0 (0 disables it)")
    return out


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def read_channel(path: str, name: str) -> pd.DataFrame:
    """Read every CSV in a channel directory (or one CSV file) into one frame."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.csv"), recursive=True))
        if not files:
            raise TrainingError(f"channel {name!r} ({path}) holds no .csv file")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise TrainingError(f"channel {name!r}: {path} does not exist")
    frames = []
    for file in files:
        try:
            frames.append(pd.read_csv(file))
        except pd.errors.EmptyDataError as exc:
            raise TrainingError(f"channel {name!r}: {file} is empty") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise TrainingError(f"channel {name!r}: {file} is not a readable CSV: {exc}") from exc
    columns = list(frames[0].columns)
    for index, frame in enumerate(frames):  # no zip(strict=): the container runs Python 3.8
        file = files[index]
        if list(frame.columns) != columns:
            raise TrainingError(
                f"channel {name!r}: {file} has columns {list(frame.columns)}, expected {columns}"
            )
    return pd.concat(frames, ignore_index=True)


def split_features(df: pd.DataFrame, target: str, name: str) -> tuple[pd.DataFrame, pd.Series]:
    """Separate the target and check every feature is numeric (missing values are allowed)."""
    if df.shape[0] == 0:
        raise TrainingError(f"channel {name!r} has a header but no rows")
    if target not in df.columns:
        raise TrainingError(
            "channel {!r} has no target column {!r} (columns: {}); set the 'target' hyperparameter".format(
                name, target, ", ".join(map(str, df.columns))
            )
        )
    features = df.drop(columns=[target])
    if features.shape[1] == 0:
        raise TrainingError(f"channel {name!r} has no feature columns besides the target")
    bad = [str(c) for c in features.columns if not _is_numeric(features[c])]
    if bad:
        raise TrainingError(
            "channel {!r}: feature columns must be numeric, these are not: {}".format(name, ", ".join(bad))
        )
    y = df[target]
    missing = int(y.isna().sum())
    if missing:
        raise TrainingError(f"channel {name!r}: target column {target!r} has {missing} missing values")
    return features.astype("float64"), y


def _is_numeric(col: pd.Series) -> bool:
    """Numeric or bool, or all missing (an empty column is just missing values)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return True
    return bool(col.isna().all())


def infer_task(y: pd.Series) -> str:
    """auto: strings -> classes; integer-valued with few distinct values -> classes; else regression."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "binary" if y.nunique() <= 2 else "multiclass"
    values = y.to_numpy(dtype="float64")
    distinct = np.unique(values)
    if np.all(np.mod(values, 1.0) == 0.0) and len(distinct) <= AUTO_MAX_CLASSES:
        return "binary" if len(distinct) <= 2 else "multiclass"
    return "regression"


def _plain(value: object) -> object:
    """numpy scalars -> JSON-friendly Python values (integral floats become ints)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def encode_labels(y: pd.Series, task: str, classes: list | None = None) -> tuple[np.ndarray, list | None]:
    """Map class labels to 0..k-1 (sorted); regression targets must be numeric."""
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y):
            raise TrainingError(f"task regression needs a numeric target, got values like {y.iloc[0]!r}")
        return y.to_numpy(dtype="float64"), None
    if classes is None:
        uniq = sorted({_plain(v) for v in y.tolist()}, key=lambda v: (str(type(v)), v))
        classes = list(uniq)
        if len(classes) < 2:
            raise TrainingError(f"task {task} needs at least two classes, the target has {classes!r} only")
        if task == "binary" and len(classes) != 2:
            raise TrainingError(
                f"task binary needs exactly two classes, the target has {len(classes)}: {classes[:10]}; "
                "use task=multiclass"
            )
    index = {c: i for i, c in enumerate(classes)}
    codes = []
    unseen = set()
    for v in y.tolist():
        key = _plain(v)
        if key not in index:
            unseen.add(key)
        else:
            codes.append(index[key])
    if unseen:
        raise TrainingError(f"validation labels not seen in training: {sorted(map(str, unseen))[:10]}")
    return np.asarray(codes, dtype="float64"), classes


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def booster_params(hps: dict, task: str, n_classes: int) -> dict:
    """XGBoost parameters valid in both 1.7 and 3.x."""
    params = {
        "max_depth": hps["max_depth"],
        "eta": hps["eta"],
        "seed": hps["seed"],
        "min_child_weight": hps["min_child_weight"],
        "subsample": hps["subsample"],
        "tree_method": "hist",
    }
    if hps["nthread"] > 0:
        params["nthread"] = hps["nthread"]
    if task == "regression":
        params.update(objective="reg:squarederror", eval_metric="rmse")
    elif task == "binary":
        params.update(objective="binary:logistic", eval_metric="logloss")
    else:
        params.update(objective="multi:softprob", eval_metric="mlogloss", num_class=n_classes)
    return params


def compute_metrics(task: str, y: np.ndarray, pred: np.ndarray) -> dict:
    """Validation metrics with the same names and numbers as pipeline.ml.metrics.

    Kept equal to it by tests/unit/ml/test_metrics_pinned.py (this file cannot import the package):
    float64 throughout, probabilities renormalized, macro-F1 over every class.
    """
    from sklearn import metrics as skm

    if task == "regression":
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        return {
            "rmse": float(math.sqrt(skm.mean_squared_error(y, pred))),
            "mae": float(skm.mean_absolute_error(y, pred)),
            "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else float("nan"),
        }
    proba = np.asarray(pred, dtype=np.float64)
    proba = proba if proba.ndim == 2 else np.column_stack([1.0 - proba, proba])
    proba = proba / proba.sum(axis=1, keepdims=True)
    labels = np.arange(proba.shape[1])
    y_int = np.asarray(y).astype(np.int64)
    predicted = proba.argmax(axis=1)
    average = "binary" if proba.shape[1] == 2 else "macro"
    out = {
        "accuracy": float(skm.accuracy_score(y_int, predicted)),
        "f1": float(skm.f1_score(y_int, predicted, average=average, labels=labels)),
        "logloss": float(skm.log_loss(y_int, np.clip(proba, 1e-15, 1.0), labels=labels)),
    }
    if len(np.unique(y_int)) == proba.shape[1]:  # AUC is defined only when every class occurs
        if proba.shape[1] == 2:
            out["auc"] = float(skm.roc_auc_score(y_int, proba[:, 1]))
        else:
            out["auc"] = float(skm.roc_auc_score(y_int, proba, multi_class="ovr", labels=labels))
    return out


def train(hps: dict, train_dir: str, validation_dir: str | None, model_dir: str) -> dict:
    """Train, early-stop, slice to the best iteration, save; return the training metadata."""
    target = hps["target"]
    train_df = read_channel(train_dir, "train")
    x_train, y_train_raw = split_features(train_df, target, "train")
    task = hps["task"] if hps["task"] != "auto" else infer_task(y_train_raw)
    if validation_dir:
        valid_df = read_channel(validation_dir, "validation")
        x_valid, y_valid_raw = split_features(valid_df, target, "validation")
        if list(x_valid.columns) != list(x_train.columns):
            x_valid = _align(x_valid, list(x_train.columns))
    else:
        x_train, x_valid, y_train_raw, y_valid_raw = _hold_out(x_train, y_train_raw, task, hps)
    if len(x_train) < MIN_TRAIN_ROWS:
        raise TrainingError(f"too few training rows: {len(x_train)} (need at least {MIN_TRAIN_ROWS})")
    if len(x_valid) < MIN_VALIDATION_ROWS:
        raise TrainingError(f"too few validation rows: {len(x_valid)} (need at least {MIN_VALIDATION_ROWS})")
    y_train, classes = encode_labels(y_train_raw, task)
    y_valid, _ = encode_labels(y_valid_raw, task, classes)
    features = [str(c) for c in x_train.columns]

    # Imported only now: xgboost (and the scikit-learn it loads) costs seconds, and a job with bad
    # input should fail in a fraction of that.
    import xgboost as xgb

    names = features if _valid_xgb_names(features) else None  # names are metadata only
    dtrain = xgb.DMatrix(x_train.to_numpy(), label=y_train, missing=np.nan, feature_names=names)
    dvalid = xgb.DMatrix(x_valid.to_numpy(), label=y_valid, missing=np.nan, feature_names=names)
    params = booster_params(hps, task, len(classes or []))
    stopping = hps["early_stopping_rounds"] or None
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=hps["num_round"],
        evals=[(dtrain, "train"), (dvalid, "validation")],
        early_stopping_rounds=stopping,
        verbose_eval=False,
    )
    rounds = booster.num_boosted_rounds()
    best_iteration = int(getattr(booster, "best_iteration", rounds - 1)) if stopping else rounds - 1
    if best_iteration + 1 < rounds:
        # Saving the full booster would ship trees past the best round (DESIGN.md pitfalls).
        booster = booster[: best_iteration + 1]
    metrics = compute_metrics(task, y_valid, booster.predict(dvalid))
    for name in sorted(metrics):
        print(f"#metric validation:{name}={metrics[name]:.10g}", flush=True)

    os.makedirs(model_dir, exist_ok=True)
    booster.save_model(os.path.join(model_dir, "xgboost-model.json"))
    meta = {
        "format_version": 1,
        "task": task,
        "target": target,
        "features": features,
        "classes": classes,
        "best_iteration": best_iteration,
        "num_boosted_rounds": booster.num_boosted_rounds(),
        "objective": params["objective"],
        "xgboost_version": xgb.__version__,
        "hyperparameters": {k: hps[k] for k in sorted(hps)},
        "train_rows": len(x_train),
        "validation_rows": len(x_valid),
        "metrics": metrics,
    }
    with open(os.path.join(model_dir, "training.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2, sort_keys=True)
    print(
        f"trained {task} model: {meta['num_boosted_rounds']} rounds (best_iteration={best_iteration}), "
        f"{len(features)} features, {len(x_train)} train / {len(x_valid)} validation rows",
        flush=True,
    )
    return meta


def _valid_xgb_names(names: list) -> bool:
    """XGBoost rejects names with '[', ']' or '<'; such columns still train, just unnamed."""
    return not any(ch in name for name in names for ch in "[]<")


def _align(x_valid: pd.DataFrame, columns: list) -> pd.DataFrame:
    """The validation channel may order columns differently, but must hold the same ones."""
    missing = [c for c in columns if c not in x_valid.columns]
    extra = [c for c in x_valid.columns if c not in columns]
    if missing or extra:
        raise TrainingError(f"validation columns differ from train: missing {missing}, unexpected {extra}")
    return x_valid[columns]


def _hold_out(x: pd.DataFrame, y: pd.Series, task: str, hps: dict) -> tuple:
    """Split train when no validation channel is given; stratified for classes when possible."""
    from sklearn.model_selection import train_test_split

    if len(x) < MIN_TRAIN_ROWS + MIN_VALIDATION_ROWS:
        raise TrainingError(f"too few rows: {len(x)} (need at least {MIN_TRAIN_ROWS + MIN_VALIDATION_ROWS})")
    stratify = y if task != "regression" and y.value_counts().min() >= 2 else None
    try:
        return train_test_split(
            x, y, test_size=hps["validation_fraction"], random_state=hps["seed"], stratify=stratify
        )
    except ValueError:
        return train_test_split(x, y, test_size=hps["validation_fraction"], random_state=hps["seed"])


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def write_failure(message: str, env: dict | None = None) -> None:
    """SageMaker reads FailureReason from this file; write it even if the directory is missing."""
    env = os.environ if env is None else env
    out_dir = env.get("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "failure"), "w", encoding="utf-8") as fh:
            fh.write(message[:1024])
    except OSError as exc:
        print(f"could not write the failure file in {out_dir}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one training job; return the process exit code."""
    env = os.environ
    try:
        hps = read_hyperparameters(argv, env)
        train_dir = env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")
        validation_dir = env.get("SM_CHANNEL_VALIDATION")
        if (
            validation_dir is None
            and os.path.isdir("/opt/ml/input/data/validation")
            and "SM_CHANNEL_TRAIN" not in env
        ):
            validation_dir = "/opt/ml/input/data/validation"
        model_dir = env.get("SM_MODEL_DIR", "/opt/ml/model")
        train(hps, train_dir, validation_dir, model_dir)
        return 0
    except TrainingError as exc:
        message = f"InvalidInput: {exc}"
    except Exception as exc:  # anything else is a bug, but SageMaker still needs a reason
        traceback.print_exc()
        message = f"InternalError: {type(exc).__name__}: {exc}"
    print(message, file=sys.stderr, flush=True)
    write_failure(message, env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
