"""The broker's identity plugin is built once per source, atomically, and says what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_cloud.mqtt import plugin


def test_built_once_per_source_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugin.CACHE_ENV, str(tmp_path))
    built = plugin.plugin_path()
    assert built.parent == tmp_path and built.suffix == ".so" and built.stat().st_size > 0
    assert built.read_bytes()[:4] == b"\x7fELF"
    mtime = built.stat().st_mtime_ns
    assert plugin.plugin_path() == built and built.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no temporary file left behind


def test_without_a_compiler_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugin.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(plugin.PluginBuildError, match="apt-get install gcc libc6-dev"):
        plugin.plugin_path()
