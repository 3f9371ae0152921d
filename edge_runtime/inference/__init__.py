"""On-device inference engine (numpy + onnxruntime + stdlib only; bundled into the inference
component artifact). See docs/contracts.md §2.

Names are resolved on first use (PEP 562), so importing a light sub-module such as
:mod:`edge_runtime.inference.stats` (VerifyOnDevice, the benches) does not load numpy and
onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_runtime.inference.engine import DEFAULT_MAX_BATCH, Engine
    from edge_runtime.inference.errors import (
        CODES,
        EngineError,
        InferenceFailed,
        InvalidInput,
        ModelLoadError,
    )

__all__ = [
    "CODES",
    "DEFAULT_MAX_BATCH",
    "Engine",
    "EngineError",
    "InferenceFailed",
    "InvalidInput",
    "ModelLoadError",
]

_HOMES = {
    "DEFAULT_MAX_BATCH": "engine",
    "Engine": "engine",
    "CODES": "errors",
    "EngineError": "errors",
    "InferenceFailed": "errors",
    "InvalidInput": "errors",
    "ModelLoadError": "errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
