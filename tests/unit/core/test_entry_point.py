"""``python -m edge_runtime.core``: device run's options, clear errors instead of tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.core.__main__ import main, parser


def test_missing_identity_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "MLOPS_EDGE_DEVICE_CERT",
        "MLOPS_EDGE_DEVICE_KEY",
        "MLOPS_EDGE_DEVICE_MQTT_HOST",
        "MLOPS_EDGE_MQTT_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    assert main(["--thing", "t1", "--root", str(tmp_path / "root")]) == 2
    assert "certificate, key and MQTT host are required" in capsys.readouterr().err


def test_bad_option_values_exit_2_with_argparse_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--thing", "t1", "--root", "r", "--mqtt-flow-control", "fast"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_the_options_are_those_of_device_run() -> None:
    from mlops_edge.commands.device import run

    ours = {a.dest for a in parser()._actions if a.dest != "help"}
    theirs = {p.name for p in run.params}
    assert ours == theirs
