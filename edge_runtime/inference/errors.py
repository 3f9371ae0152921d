"""Engine errors. ``InvalidInput`` is the only error a request can cause; it carries a stable
``code`` (for programs) and a message (for people), which the inference component returns as
``{"ok": false, "error": {"code", "message"}}``."""

from __future__ import annotations

__all__ = ["CODES", "EngineError", "InferenceFailed", "InvalidInput", "ModelLoadError"]

# Every code InvalidInput can carry; tests and the component's docs rely on this list.
CODES = (
    "not_json",  # bytes/str that are not UTF-8 JSON
    "bad_shape",  # top level is not a record, a row, or a list of them (or an envelope of those)
    "ambiguous_payload",  # more than one envelope key ("rows" and "records", ...)
    "empty",  # no rows at all
    "batch_too_large",  # more rows than max_batch
    "payload_too_large",  # more bytes than max_payload_bytes
    "wrong_length",  # a row without exactly one value per feature
    "missing_feature",  # a record without a feature the model needs
    "unknown_feature",  # a record with a key that is not a feature
    "wrong_type",  # a value that is not a number (strings and booleans included)
    "missing_value",  # null/NaN while missing values are not allowed
    "non_finite",  # Infinity or a number outside float32's range
)


class EngineError(Exception):
    """Base of the engine's errors."""


class ModelLoadError(EngineError):
    """The model directory cannot be served: files missing, digest mismatch, or an unusable graph."""


class InferenceFailed(EngineError):
    """ONNX Runtime failed on input that passed validation: a bug or a broken model, not the caller."""


class InvalidInput(EngineError):
    """The request cannot be answered as sent; ``code`` is one of ``CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The error object of an inference result."""
        return {"code": self.code, "message": self.message}
