"""sourcedir.tar.gz and the demo CSVs are deterministic: same input, same bytes."""

from __future__ import annotations

import ast
import io
import tarfile
from pathlib import Path

from pipeline.ml.datasets import write_demos
from pipeline.training import TRAIN_SCRIPT, source_tarball


def test_source_tarball_is_deterministic_and_holds_train_py() -> None:
    blob = source_tarball()
    assert blob == source_tarball()
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["train.py"]
        assert members[0].uid == 0 and members[0].mtime == 315532800
        assert tar.extractfile(members[0]).read() == TRAIN_SCRIPT.read_bytes()


def test_train_py_is_self_contained_and_python38_syntax() -> None:
    """SageMaker's XGBoost 1.7-1 container runs Python 3.8 with no access to this package."""
    tree = ast.parse(TRAIN_SCRIPT.read_text(), feature_version=(3, 8))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "argparse", "glob", "json", "math", "os", "sys", "traceback",
                     "numpy", "pandas", "xgboost", "sklearn"}  # fmt: skip


def test_demo_csvs_are_deterministic(tmp_path: Path) -> None:
    first = write_demos(tmp_path / "a")
    second = write_demos(tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a.train_csv.read_bytes() == b.train_csv.read_bytes()
        assert a.validation_csv.read_bytes() == b.validation_csv.read_bytes()
    wine = next(d for d in first if d.name == "wine")
    assert "class_0" in wine.train_csv.read_text()
