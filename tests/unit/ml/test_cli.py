"""`mlops-edge export` and `predict`: user errors are a message and exit 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mlops_edge.main import main
from tests.unit.ml.helpers import Built


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_export_then_predict(built: dict[str, Built], tmp_path: Path) -> None:
    b = built["wine"]
    code, out = _run("export", "--model-dir", str(b.model_dir), "--validation", str(b.data.validation_csv),
                     "--out", str(tmp_path / "m"))  # fmt: skip
    assert code == 0, out
    assert "parity on 45 rows" in out and "passed" in out
    code, out = _run("predict", str(tmp_path / "m"), "--golden")
    assert code == 0 and "golden rows answered as expected" in out
    row = json.loads((tmp_path / "m" / "golden.json").read_text())["rows"][0]
    code, out = _run("predict", str(tmp_path / "m"), json.dumps({"body": json.dumps(row)}))
    assert code == 0 and json.loads(out)["predictions"][0]["class"].startswith("class_")


def test_parity_failure_is_a_user_error(built: dict[str, Built], tmp_path: Path) -> None:
    b = built["diabetes"]
    code, out = _run("export", "--model-dir", str(b.model_dir), "--validation", str(b.data.validation_csv),
                     "--out", str(tmp_path / "m"), "--abs-tolerance", "0", "--rel-tolerance", "0")  # fmt: skip
    assert code == 1
    assert "Error: ONNX Runtime and XGBoost disagree" in out and "Traceback" not in out


def test_bad_payload_and_bad_model_dir_are_user_errors(built: dict[str, Built], tmp_path: Path) -> None:
    code, out = _run("predict", str(built["diabetes"].out_dir), "[1, 2]")
    assert code == 1 and "invalid input (wrong_length): row has 2 values, the model takes 10" in out
    code, out = _run("predict", str(tmp_path), "[1]")
    assert code == 1 and "cannot read the manifest" in out and "Traceback" not in out
