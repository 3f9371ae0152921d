"""The cloud assembly is synthesized as ``cdk synth`` runs the app, and cached by its inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlops_edge.environment.assembly import (
    LOCAL_CONTEXT,
    Assembly,
    AssemblyError,
    app_sources,
    input_key,
    synthesize,
)

#: A stand-in CDK app: writes a one-stack manifest and what it was given, counts its runs.
APP = """
import json, os, pathlib
out = pathlib.Path(os.environ["CDK_OUTDIR"])
out.mkdir(parents=True, exist_ok=True)
runs = pathlib.Path("runs.txt")
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
(out / "S.template.json").write_text(json.dumps({"Resources": {}, "Outputs": {"StateMachineArn": {"Value": "a"}}}))
(out / "given.json").write_text(json.dumps({
    "context": json.loads(os.environ["CDK_CONTEXT_JSON"]),
    "region": os.environ.get("CDK_DEFAULT_REGION"),
}))
(out / "manifest.json").write_text(json.dumps({"artifacts": {"S": {
    "type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
    "properties": {"templateFile": "S.template.json"}}}}))
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "infra").mkdir(parents=True)
    (root / "infra" / "stack.py").write_text("x = 1\n")
    (root / "infra" / "__pycache__").mkdir()
    (root / "infra" / "__pycache__" / "stack.cpython-311.pyc").write_bytes(b"\0")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    (root / "app.py").write_text(APP)
    (root / "cdk.json").write_text(
        json.dumps(
            {
                "app": f"{sys.executable} app.py",
                "watch": {"include": ["app.py", "infra/**"], "exclude": ["**/__pycache__", "tests"]},
                "context": {"stack_prefix": "X"},
            }
        )
    )
    return root


def test_sources_are_cdk_jsons_watch_list(app: Path) -> None:
    assert [p.relative_to(app).as_posix() for p in app_sources(app)] == [
        "app.py",
        "cdk.json",
        "infra/stack.py",
    ]


def test_the_key_follows_sources_and_context_not_other_files(app: Path) -> None:
    key = input_key(app)
    (app / "tests" / "test_x.py").write_text("changed")
    (app / "infra" / "__pycache__" / "stack.cpython-311.pyc").write_bytes(b"changed")
    assert input_key(app) == key
    (app / "infra" / "stack.py").write_text("x = 2\n")
    changed = input_key(app)
    assert changed != key
    (app / "cdk.context.json").write_text('{"ami:account=1:region=r": "ami-0123456789abcdef0"}')
    assert input_key(app) != changed


def test_synthesized_once_per_key_as_the_cli_runs_the_app(
    app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDK_DEFAULT_REGION", "eu-west-1")  # a CLI with credentials would set it
    cache = tmp_path / "cache"
    first = synthesize(cache, root=app)
    assert not first.cached and (first.directory / "manifest.json").is_file()
    given = json.loads((first.directory / "given.json").read_text())
    assert given == {"context": LOCAL_CONTEXT, "region": None}  # environment-agnostic
    again = synthesize(cache, root=app)
    assert again.cached and again.directory == first.directory
    assert (app / "runs.txt").read_text() == "x"
    (app / "infra" / "stack.py").write_text("x = 3\n")
    third = synthesize(cache, root=app)
    assert not third.cached and third.directory != first.directory
    stack = Assembly.read(third.directory).stack_with_output("StateMachineArn")
    assert stack.stack_name == "S" and stack.template()["Outputs"]


def test_a_failing_app_says_why(app: Path, tmp_path: Path) -> None:
    (app / "app.py").write_text("raise SystemExit('no jsii today')\n")
    with pytest.raises(AssemblyError, match="no jsii today"):
        synthesize(tmp_path / "cache", root=app)
    assert not list((tmp_path / "cache").glob("assembly-*"))


def test_a_directory_that_is_not_an_assembly_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match="not a cloud assembly"):
        Assembly.read(tmp_path)


def test_run_refuses_a_cdk_out_that_is_not_an_assembly(tmp_path: Path) -> None:
    from mlops_edge.environment.run_options import RunError, RunOptions

    with pytest.raises(RunError, match="not a cloud assembly"):
        RunOptions(cdk_out=tmp_path).check()
