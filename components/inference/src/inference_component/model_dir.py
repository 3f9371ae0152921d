"""Find the model directory inside the model component's unzipped artifacts."""

from __future__ import annotations

from pathlib import Path


class ModelNotFound(RuntimeError):
    """The model component's artifacts hold no ``model.json`` + ``model.onnx``."""


def find_model_dir(root: Path) -> Path:
    """The one directory under ``root`` (depth <= 2) holding model.json and model.onnx.

    Greengrass unzips ``<name>.zip`` into ``<decompressedPath>/<name>/``; searching instead of
    assuming the zip's name keeps the two recipes independent of each other's artifact names.
    """
    root = Path(root)
    candidates = [root, *sorted(p for p in root.glob("*") if p.is_dir())]
    candidates += sorted(p for p in root.glob("*/*") if p.is_dir())
    found = [p for p in candidates if (p / "model.json").is_file() and (p / "model.onnx").is_file()]
    if not found:
        raise ModelNotFound(f"no model.json + model.onnx under {root}")
    if len(found) > 1:
        raise ModelNotFound(f"more than one model under {root}: {[str(p) for p in found]}")
    return found[0]
