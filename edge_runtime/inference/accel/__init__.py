"""The accelerated tree-ensemble path: build and locate the ``mlops_edge.trees`` custom-op library.

``trees.c`` (beside this file) is an onnxruntime custom operator library that walks an XGBoost
ensemble as perfect, branch-free trees (the model variant ``model.accel.onnx`` that
``pipeline.ml.perfect_trees`` writes). It is compiled from source with the machine's own C compiler
wherever it runs, so it is built for that machine's architecture and never downloaded:
``scripts/setup`` builds it into the project's environment, the Lambda image into its own, and the
inference component's Install step into the component's work directory.

Where the engine looks (first that exists): ``$MLOPS_EDGE_TREES_LIB``, then
``<sys.prefix>/lib/mlops-edge/libmlops_edge_trees.so`` (the interpreter's environment). No library
means the standard ``model.onnx`` runs; nothing else changes.

Usage: ``python -m edge_runtime.inference.accel build [--out PATH] [--cc CC]``.
Standard library only: this module runs on devices before anything else is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "API_VERSION",
    "CHECKED_ORT_VERSIONS",
    "DOMAIN",
    "ENV_VAR",
    "LIBRARY_NAME",
    "MAX_DEPTH",
    "MAX_FEATURES",
    "OP_CLASSIFIER",
    "OP_REGRESSOR",
    "SOURCE",
    "AccelBuildError",
    "build",
    "default_library_path",
    "library_path",
]

SOURCE = Path(__file__).resolve().with_name("trees.c")
DOMAIN = "mlops_edge.trees"
OP_REGRESSOR = "PerfectTreeEnsembleRegressor"
OP_CLASSIFIER = "PerfectTreeEnsembleClassifier"
#: trees.c asks onnxruntime for this version of the C API (MLOPS_TREES_API_VERSION there).
API_VERSION = 13
#: Deepest tree the kernel takes (MLOPS_TREES_MAX_DEPTH in trees.c): a perfect depth-10 tree is
#: 1,023 nodes + 1,024 leaves (12 KiB); deeper ones cost memory faster than they save time.
MAX_DEPTH = 10
#: Most features a model may have (MLOPS_TREES_MAX_FEATURES: a node's feature index is 16 bits).
MAX_FEATURES = 65536
#: onnxruntime releases whose C API table and OrtCustomOp layout were compared with the
#: declarations in trees.c. tests/unit/engine/test_accel.py fails when the pinned onnxruntime
#: is not listed: re-check the slots (ORT_SLOT_*) against that release's onnxruntime_c_api.h,
#: then add it here.
CHECKED_ORT_VERSIONS = ("1.31.1",)
ENV_VAR = "MLOPS_EDGE_TREES_LIB"
LIBRARY_NAME = "libmlops_edge_trees.so"
CFLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-fno-math-errno")


class AccelBuildError(RuntimeError):
    """The library could not be compiled (no compiler, or the compiler failed)."""


def default_library_path() -> Path:
    """Where ``build`` puts the library by default: this interpreter's environment."""
    return Path(sys.prefix) / "lib" / "mlops-edge" / LIBRARY_NAME


def library_path() -> Path | None:
    """The library to load, or None when this machine has none (the standard model then runs)."""
    configured = os.environ.get(ENV_VAR)
    candidates = [Path(configured)] if configured else []
    candidates.append(default_library_path())
    for path in candidates:
        if path.is_file():
            return path
    return None


def build(out: Path | None = None, cc: str | None = None, *, force: bool = False) -> Path:
    """Compile ``trees.c`` into ``out`` (atomically: a failed build leaves no half library).

    Skipped when ``out`` was built from this very source with these flags (a ``.sha256`` file
    beside it says so): the component's Install step reruns on every model update.
    """
    import hashlib

    out = Path(out) if out else default_library_path()
    stamp = out.with_name(out.name + ".sha256")
    want = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()
    if not force and out.is_file() and stamp.is_file() and stamp.read_text().strip() == want:
        return out
    choices = [cc or os.environ.get("CC") or "cc"] + ([] if cc or os.environ.get("CC") else ["gcc"])
    compiler = next((c for c in choices if shutil.which(c)), None)
    if compiler is None:
        raise AccelBuildError(f"no C compiler ({' or '.join(choices)}) on PATH; the standard model will run")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".trees-", suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, *CFLAGS, "-o", tmp, str(SOURCE), "-lm"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise AccelBuildError(f"{compiler} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
        stamp.write_text(want + "\n")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv: list[str] | None = None) -> int:
    """``build``: compile the library; prints where it went or why it could not."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m edge_runtime.inference.accel")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="compile trees.c with the system C compiler")
    cmd.add_argument(
        "--out", type=Path, default=None, help=f"library path (default {default_library_path()})"
    )
    cmd.add_argument("--cc", default=None, help="C compiler (default $CC, else cc or gcc)")
    cmd.add_argument("--force", action="store_true", help="compile even if the library is up to date")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, args.cc, force=args.force)
    except (AccelBuildError, OSError, subprocess.SubprocessError) as exc:
        print(f"accelerated engine not built: {exc}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0
