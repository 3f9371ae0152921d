"""Exported demo models shared by the ML unit tests (built once per session)."""

from __future__ import annotations

import pytest

from tests.unit.ml.helpers import Built, build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    root = tmp_path_factory.mktemp("ml-models")
    return {name: build(root, name) for name in ("diabetes", "breast_cancer", "wine")}
