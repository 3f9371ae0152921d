"""Light sub-modules of the engine package load without numpy and onnxruntime (VerifyOnDevice and
the benches import the percentile helper; a cold Lambda start should not pay for the engine)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(statement: str) -> set[str]:
    code = (
        f"import sys\n{statement}\nprint(' '.join(m for m in ('numpy', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_stats_alone_loads_neither_numpy_nor_onnxruntime() -> None:
    assert _loaded_after("from edge_runtime.inference.stats import percentile") == set()


def test_the_package_names_still_resolve() -> None:
    assert _loaded_after("from edge_runtime.inference import Engine, InvalidInput") == {
        "numpy",
        "onnxruntime",
    }


def test_an_unknown_name_is_an_attribute_error() -> None:
    import edge_runtime.inference as package

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018
