"""Imports flow one way (docs/architecture.md): no module imports from a folder above it.

The imports are read from the source (every ``import``, lazy ones inside functions included), so
the check costs no import of xgboost or the CDK. The table below is the map of docs/architecture.md;
changing a floor is a design change, made in both places.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from pipeline.config.deployment import LAMBDA_CODE_FOLDERS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("local_cloud", "edge_runtime", "pipeline", "components", "lambdas", "infra", "mlops_edge")
#: Packages whose sub-packages stand on different floors.
SPLIT = ("edge_runtime", "mlops_edge")

#: unit -> (floor, units it may import). A unit may import only units on lower floors.
FLOORS: dict[str, tuple[int, frozenset[str]]] = {
    "local_cloud": (1, frozenset()),
    # The faces of the split packages (their __init__.py) import nothing of the project.
    "edge_runtime": (1, frozenset()),
    "mlops_edge": (1, frozenset()),
    "edge_runtime.inference": (1, frozenset()),
    "edge_runtime.core": (1, frozenset()),
    "pipeline": (2, frozenset({"edge_runtime.inference"})),
    "components": (3, frozenset({"edge_runtime.inference", "pipeline"})),
    "lambdas": (4, frozenset({"edge_runtime.inference", "pipeline", "components"})),
    "infra": (5, frozenset({"pipeline", "components", "lambdas"})),
    "mlops_edge.report": (6, frozenset({"pipeline"})),
    "mlops_edge.training": (6, frozenset({"pipeline", "local_cloud"})),
    "mlops_edge.demo": (7, frozenset({"mlops_edge.training", "pipeline", "edge_runtime.inference"})),
    # The local web console: it reads executions through report's history fold; the commands
    # start it (it sits beside the environment, which starts it as a child process by its CLI).
    "mlops_edge.console": (7, frozenset({"mlops_edge.report", "pipeline"})),
    # The operator's side may import everything below it: `component build` packages a component
    # with components/build.py itself (docs/architecture.md).
    "mlops_edge.environment": (
        7,
        frozenset(
            {
                "mlops_edge.report",
                "pipeline",
                "local_cloud",
                "edge_runtime.core",
                "infra",
                "lambdas",
                "components",
            }
        ),
    ),
    "mlops_edge.commands": (
        8,
        frozenset(
            {
                "mlops_edge.environment",
                "mlops_edge.console",
                "mlops_edge.report",
                "mlops_edge.training",
                "mlops_edge.demo",
                "pipeline",
                "local_cloud",
                "edge_runtime.core",
                "edge_runtime.inference",
                "infra",
            }
        ),
    ),
    "mlops_edge.main": (9, frozenset({"mlops_edge.commands"})),
}
#: What the code running on AWS or on a device must never carry.
NEVER_SHIPPED = {"local_cloud", "mlops_edge", "infra"}


def unit_of(module: str) -> str | None:
    """The floor-table unit a dotted module name belongs to (None when not a project module)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] in SPLIT and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> Iterable[tuple[int, str]]:
    """Every absolute import in the file, with its line, wherever it stands in the file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def project_edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importer unit, imported unit) for every import between two units."""
    edges = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = unit_of(module_name(path))
            for line, imported in imported_modules(path):
                target = unit_of(imported)
                if source and target and target != source:
                    edges.append((str(path.relative_to(ROOT)), line, source, target))
    return edges


def violations(
    edges: Iterable[tuple[str, int, str, str]], floors: Mapping[str, tuple[int, frozenset[str]]]
) -> list[str]:
    found = []
    for where, line, source, target in edges:
        if source not in floors:
            found.append(f"{where}:{line}: {source} is not on the map (docs/architecture.md)")
        elif target not in floors[source][1]:
            found.append(f"{where}:{line}: {source} imports {target}, which the map does not allow")
    return found


def test_the_map_only_points_down() -> None:
    for unit, (floor, allowed) in FLOORS.items():
        for target in allowed:
            assert FLOORS[target][0] < floor, f"{unit} (floor {floor}) may import {target}, not below it"


def test_every_import_follows_the_map() -> None:
    edges = project_edges()
    assert edges, "no imports between folders found: the reader is broken"
    assert violations(edges, FLOORS) == []


def test_every_module_is_on_the_map() -> None:
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert unit_of(module_name(path)) in FLOORS, f"{path} has no floor in the map"


@pytest.mark.parametrize(
    ("edge", "reason"),
    [
        (("pipeline/x.py", 1, "pipeline", "mlops_edge.commands"), "library reaching up to the tools"),
        (("lambdas/x.py", 1, "lambdas", "local_cloud"), "a handler importing the local cloud"),
        (("infra/x.py", 1, "infra", "mlops_edge.environment"), "infra reaching up to the tools"),
        (("mlops_edge/environment/x.py", 1, "mlops_edge.environment", "mlops_edge.commands"), "into cli"),
    ],
)
def test_the_check_catches_an_upward_import(edge: tuple[str, int, str, str], reason: str) -> None:
    assert violations([edge], FLOORS), reason


def test_lazy_imports_are_read(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from local_cloud import LocalCloud\n")
    assert list(imported_modules(source)) == [(2, "local_cloud")]


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        unit = todo.pop()
        if unit not in seen:
            seen.add(unit)
            todo += FLOORS[unit][1]
    return seen


@pytest.mark.parametrize("shipped", ["lambdas", "components", "edge_runtime.core", "edge_runtime.inference"])
def test_code_on_aws_and_devices_never_reaches_the_tools(shipped: str) -> None:
    reachable = {unit.split(".")[0] for unit in _closure(shipped)}
    assert not reachable & NEVER_SHIPPED


def test_lambda_code_is_exactly_what_the_handlers_import() -> None:
    """The image and zip carry the handlers' whole closure, and no CLI, infra or local cloud."""
    needed = {unit.split(".")[0] for unit in _closure("lambdas")}
    assert set(LAMBDA_CODE_FOLDERS) == needed
    dockerfile = (ROOT / "lambdas" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+)/ ", dockerfile, re.MULTILINE))
    assert copied == set(LAMBDA_CODE_FOLDERS)
