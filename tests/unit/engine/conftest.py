"""Exported models for the engine tests (built once per session, small and fast)."""

from __future__ import annotations

import pytest

from tests.unit.ml.helpers import Built, build


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    root = tmp_path_factory.mktemp("engine-models")
    return {name: build(root, name, num_round=10) for name in ("diabetes", "breast_cancer", "wine")}
