"""Errors of the ML core; callers (CLI, export Lambda) catch ``MLError`` and report its message."""

from __future__ import annotations

__all__ = ["ExportFailed", "InvalidDataset", "MLError", "ParityFailed", "TrainingFailed"]


class MLError(Exception):
    """Base of every error this package raises on purpose; the message is meant for a person."""


class InvalidDataset(MLError):
    """A CSV cannot be used as given (missing target, empty, non-numeric features, too few rows)."""


class ExportFailed(MLError):
    """The model could not be converted to a valid ONNX graph, or the training output is unusable."""


class ParityFailed(MLError):
    """ONNX Runtime and XGBoost disagree beyond the tolerance: the ONNX model must not ship."""

    def __init__(self, message: str, *, parity: dict | None = None) -> None:
        super().__init__(message)
        self.parity = parity or {}


class TrainingFailed(MLError):
    """The training program or job did not produce a usable model (the message says why).

    One class for both sides: ``mlops-edge train`` raises it when train.py exits non-zero, and the
    ExportOnnx Lambda when the SageMaker job did not complete; its name is the ``errorType`` the
    state machine's Catch matches.
    """
