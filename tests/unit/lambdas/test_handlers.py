"""Handlers stay thin, and every error name the ASL catches is an exception a handler can raise."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

import lambdas.core.exceptions as core_errors
import pipeline.ml.exceptions as ml_errors
from pipeline.statemachine import FUNCTION_NAMES, HANDLER_ERRORS

LAMBDAS = Path(__file__).resolve().parents[3] / "lambdas"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_handler_module_is_thin_and_callable(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    source = (LAMBDAS / f"{name}.py").read_text()
    code_lines = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code_lines) <= 25, f"lambdas/{name}.py has {len(code_lines)} lines: move logic to lambdas/core"
    assert "local_cloud" not in source
    module = importlib.import_module(f"lambdas.{name}")
    assert list(inspect.signature(module.handler).parameters) == ["event", "context"]


def test_no_lambda_module_imports_local_cloud_or_branches_on_local() -> None:
    for path in LAMBDAS.rglob("*.py"):
        text = path.read_text()
        assert "local_cloud" not in text, path
        assert "is_local" not in text and "LOCAL" not in text, path


@pytest.mark.parametrize(("function", "errors"), sorted(HANDLER_ERRORS.items()))
def test_caught_error_names_are_real_exception_classes(function: str, errors: tuple[str, ...]) -> None:
    for error in errors:
        cls = getattr(core_errors, error, None) or getattr(ml_errors, error, None)
        assert inspect.isclass(cls) and issubclass(cls, Exception), f"{function}: {error}"
