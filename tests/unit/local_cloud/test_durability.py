"""Durability.commit under concurrent writers: an interrupted snapshot is taken again, not failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_cloud.persistence.durability import SNAPSHOT_ATTEMPTS, Durability


def _flaky(failures: int, message: str = "OrderedDict mutated during iteration"):
    calls = {"n": 0}

    def saver() -> None:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise RuntimeError(message)

    return saver, calls


def test_a_snapshot_interrupted_by_a_concurrent_mutation_is_taken_again(tmp_path: Path) -> None:
    durability = Durability(tmp_path)
    saver, calls = _flaky(2)
    durability.register("iot", saver)
    durability.commit("iot")
    assert calls["n"] == 3 and durability.failures == 0 and len(durability.stats["iot"]) == 1


def test_a_snapshot_that_keeps_being_interrupted_fails_after_its_attempts(tmp_path: Path) -> None:
    durability = Durability(tmp_path)
    saver, calls = _flaky(SNAPSHOT_ATTEMPTS + 5)
    durability.register("iot", saver)
    with pytest.raises(RuntimeError, match="during iteration"):
        durability.commit("iot")
    assert calls["n"] == SNAPSHOT_ATTEMPTS and durability.failures == 1


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    durability = Durability(tmp_path)
    saver, calls = _flaky(1, "disk full")
    durability.register("iot", saver)
    with pytest.raises(RuntimeError, match="disk full"):
        durability.commit("iot")
    assert calls["n"] == 1 and durability.failures == 1
