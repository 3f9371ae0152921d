"""On-device inference engine (numpy + onnxruntime + stdlib only; bundled into the inference
component artifact). See docs/contracts.md §2."""

from edge_runtime.inference.engine import DEFAULT_MAX_BATCH, Engine
from edge_runtime.inference.errors import CODES, EngineError, InferenceFailed, InvalidInput, ModelLoadError

__all__ = [
    "CODES",
    "DEFAULT_MAX_BATCH",
    "Engine",
    "EngineError",
    "InferenceFailed",
    "InvalidInput",
    "ModelLoadError",
]
