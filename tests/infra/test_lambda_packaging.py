"""The Lambda packaging stays consistent with the code: image pins, build context, zip imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

from infra.functions import CODE_FOLDERS, REPO_ROOT, SPECS

pytestmark = pytest.mark.infra

#: What the managed python3.11 runtime provides besides the standard library.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3"}
PROJECT_PACKAGES = {"pipeline", "lambdas", "components", "edge_runtime", "local_cloud", "infra"}


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if match := re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_image_requirements_are_pinned_like_pyproject() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = _pins(project["dependencies"])
    image = _pins((REPO_ROOT / "lambdas" / "requirements-image.txt").read_text().splitlines())
    assert image, "requirements-image.txt has no pins"
    for name, version in image.items():
        if name in declared:
            assert version == declared[name], f"{name}: image pins {version}, pyproject {declared[name]}"
    for needed in (
        "xgboost-cpu",
        "onnxmltools",
        "onnxruntime",
        "onnx",
        "numpy",
        "boto3",
        "jsonschema",
        "awslambdaric",
    ):
        assert needed in image, needed


def test_dockerfile_builds_from_the_code_folders() -> None:
    dockerfile = (REPO_ROOT / "lambdas" / "Dockerfile").read_text()
    assert re.search(r"^FROM public\.ecr\.aws/lambda/", dockerfile, re.M)
    for folder in CODE_FOLDERS:
        assert f"COPY {folder}/ " in dockerfile, folder
    assert "python3.11" in dockerfile and "awslambdaric" in dockerfile


def _module_file(name: str) -> Path | None:
    base = REPO_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module a file imports, anywhere in it (lazy imports count: they run too)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base == "__future__":
                continue
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")
            )
    return found


def third_party_closure(module: str) -> set[str]:
    """Top-level non-stdlib, non-project packages ``module`` needs, following project imports."""
    seen: set[str] = set()
    outside: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo.extend(parents)
        for imported in _imports(path, name):
            top = imported.split(".")[0]
            if top in PROJECT_PACKAGES:
                todo.append(imported)
            elif top not in sys.stdlib_module_names:
                outside.add(top)
    return outside


ZIP_HANDLERS = sorted(name for name, spec in SPECS.items() if spec.packaging == "zip")


@pytest.mark.parametrize("name", ZIP_HANDLERS)
def test_zip_handlers_need_only_the_managed_runtime(name: str) -> None:
    if _module_file(f"lambdas.{name}") is None:
        pytest.skip(f"lambdas/{name}.py not written yet")
    extra = third_party_closure(f"lambdas.{name}") - RUNTIME_PACKAGES
    assert not extra, (
        f"lambdas.{name} is packaged as a zip for the managed runtime but imports {sorted(extra)}: "
        "package it as an image in infra/functions.py SPECS, or drop the dependency"
    )


def test_closure_finds_third_party_imports() -> None:
    """The checker itself: configure needs jsonschema, which is why it is an image function."""
    if _module_file("lambdas.core.configure") is None:
        pytest.skip("lambdas/core/configure.py not written yet")
    assert "jsonschema" in third_party_closure("lambdas.core.configure")
