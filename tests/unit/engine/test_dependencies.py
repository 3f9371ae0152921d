"""The engine ships inside the Greengrass inference artifact: numpy, onnxruntime and stdlib only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import edge_runtime.inference

ALLOWED = {"numpy", "onnxruntime", "edge_runtime", "__future__"}


def test_engine_imports_only_numpy_onnxruntime_and_stdlib() -> None:
    package = Path(edge_runtime.inference.__file__).parent
    found: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    assert found, "no imports found: the scan itself is broken"
    foreign = {m: f for m, f in found.items() if m not in ALLOWED and m not in sys.stdlib_module_names}
    assert not foreign, f"non-stdlib imports in the edge engine: {foreign}"
