"""Quality metrics computed from the ONNX model's outputs (what the quality gate reads).

Names match the ``#metric validation:<name>`` lines of train.py: regression ``rmse``, ``mae``,
``r2``; classification ``accuracy``, ``f1`` (binary F1 of class 1, macro-averaged for multiclass),
``logloss`` and ``auc`` (one-vs-rest macro for multiclass; present only when every class occurs).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

__all__ = ["classification_metrics", "compute", "regression_metrics"]


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (R² needs two rows or more; NaN otherwise)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    return {
        "rmse": float(math.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }


def classification_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, F1, log loss, and AUC where it is defined, from class probabilities (n, k)."""
    proba = np.asarray(proba, dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 outputs sum to 1 only within ~1e-7
    k = proba.shape[1]
    labels = np.arange(k)
    y = np.asarray(y, dtype=np.int64)
    predicted = proba.argmax(axis=1)
    out = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "f1": float(skm.f1_score(y, predicted, average="binary" if k == 2 else "macro", labels=labels)),
        "logloss": float(skm.log_loss(y, np.clip(proba, 1e-15, 1.0), labels=labels)),
    }
    if len(np.unique(y)) == k:
        if k == 2:
            out["auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
        else:
            out["auc"] = float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    return out


def compute(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Dispatch on task: regression takes values, classification takes probabilities."""
    if task == "regression":
        return regression_metrics(y, output)
    return classification_metrics(y, output)
