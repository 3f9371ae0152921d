"""Metric values against hand-computed figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.ml import metrics


def test_regression() -> None:
    m = metrics.compute("regression", np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [5.0]]))
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / 2)


def test_binary_has_auc_and_f1_of_positive_class() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = metrics.compute("binary", np.array([0, 1, 1, 1]), proba)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.8)
    assert m["auc"] == pytest.approx(1.0)
    assert m["logloss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))


def test_multiclass_macro_f1_and_auc_only_when_all_classes_occur() -> None:
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    m = metrics.compute("multiclass", np.array([0, 1, 2, 1]), proba)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert "auc" in m
    assert "auc" not in metrics.compute("multiclass", np.array([0, 1, 1, 1]), proba)
