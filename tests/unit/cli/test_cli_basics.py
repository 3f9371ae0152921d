"""The CLI's shape: instant help, every listed command importable, clear errors without AWS set up."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from mlops_edge.main import COMMANDS, main


def test_help_lists_every_command_without_importing_heavy_modules() -> None:
    code = (
        "import sys; from mlops_edge.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('xgboost', 'onnxruntime', 'moto', 'aws_cdk', 'boto3', 'botocore', 'rich') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_loads_and_has_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "not available" not in result.output


def test_mqtt_commands_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HOST", "PORT", "CA", "CERT", "KEY"):
        monkeypatch.delenv(f"MLOPS_EDGE_MQTT_{key}", raising=False)
    result = CliRunner().invoke(main, ["mqtt", "pub", "edge/x/inference/request", "{}"])
    assert result.exit_code == 1
    assert "MLOPS_EDGE_MQTT_HOST" in result.output and "mlops-edge local env" in result.output


def test_mqtt_pub_rejects_non_json_payload() -> None:
    result = CliRunner().invoke(main, ["mqtt", "pub", "t", "{not json"])
    assert result.exit_code == 1 and "not JSON" in result.output


def test_execute_rejects_bad_input_before_calling_aws(tmp_path) -> None:
    result = CliRunner().invoke(main, ["execute", "--input-json", "[1, 2]"])
    assert result.exit_code == 1 and "must be a JSON object" in result.output
