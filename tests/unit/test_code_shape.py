"""The house rules of docs/architecture.md, held by a test: no function over 80 lines, and no file
over 400 lines unless its module docstring says why ("... 400 lines ...")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("pipeline", "mlops_edge", "lambdas", "components", "edge_runtime", "local_cloud", "infra", "bench")
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 400


def _sources() -> list[Path]:
    return sorted(
        p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts
    )


def long_functions(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def unexplained_long_file(path: Path, root: Path = ROOT) -> str | None:
    text = path.read_text()
    lines = text.count("\n")
    if lines <= MAX_FILE_LINES:
        return None
    docstring = ast.get_docstring(ast.parse(text)) or ""
    return None if "400 lines" in docstring else f"{path.relative_to(root)} ({lines} lines, no reason given)"


def test_the_sources_are_found() -> None:
    assert len(_sources()) > 100


def test_no_function_over_80_lines() -> None:
    assert [f for p in _sources() for f in long_functions(p)] == []


def test_no_file_over_400_lines_without_its_reason() -> None:
    assert [r for p in _sources() if (r := unexplained_long_file(p))] == []


@pytest.mark.parametrize("body_lines", [81, 200])
def test_the_check_catches_a_long_function(tmp_path: Path, body_lines: int) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n" + "    x = 1\n" * (body_lines - 1))
    assert long_functions(source, tmp_path)
    source.write_text('"""Short."""\n' + "x = 1\n" * 401)
    assert unexplained_long_file(source, tmp_path)
    source.write_text('"""Longer than 400 lines because it must be one file."""\n' + "x = 1\n" * 401)
    assert unexplained_long_file(source, tmp_path) is None
