"""The README is a contract with users: its commands, diagram and example must match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_edge.main import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].startswith("./scripts/run ") and first_block[1].startswith("./scripts/test ")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci and (ROOT / "scripts" / "run").exists()


def test_console_example_is_the_shipped_example_input() -> None:
    shipped = json.loads((ROOT / "pipeline/config/example-input.json").read_text())
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", README, re.S)]
    assert shipped in blocks


def test_every_mlops_edge_command_in_the_readme_exists() -> None:
    used = set(re.findall(r"mlops-edge ([a-z]+)", README))
    assert used, "the README shows mlops-edge commands"
    assert used <= set(COMMANDS), used - set(COMMANDS)


_ASL = """
import json
from pipeline.statemachine import FUNCTION_NAMES, plain_asl
arns = {n: f"arn:aws:lambda:us-east-1:123456789012:function:mlops-edge-{n}" for n in FUNCTION_NAMES}
print(json.dumps(plain_asl(arns, sagemaker_role_arn="arn:aws:iam::123456789012:role/sm")))
"""


@pytest.fixture(scope="module")
def asl_states() -> dict[str, str]:
    """The ASL built by its own process: at the end of a whole-suite session, a CDK call through the
    session's long-lived jsii kernel (started by earlier tests, then shared by many forks) was seen
    to block forever on its pipe."""
    done = subprocess.run(
        [sys.executable, "-c", _ASL], capture_output=True, text=True, timeout=300, check=True, cwd=ROOT
    )
    asl = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: state["Type"] for name, state in asl["States"].items()}


def test_state_diagram_matches_the_asl(asl_states: dict[str, str]) -> None:
    block = README.split("```mermaid\nstateDiagram-v2\n", 1)[1].split("```", 1)[0]
    nodes = set(re.findall(r"^\s*(\w+) -->", block, re.M)) | set(re.findall(r"--> (\w+)", block))
    nodes.discard("[*]")
    by_id = {name.replace("?", ""): name for name in asl_states}
    unknown = nodes - set(by_id)
    assert not unknown, f"README diagram names states the ASL lacks: {unknown}"
    tasks = {name.replace("?", "") for name, kind in asl_states.items() if kind == "Task"}
    assert tasks <= nodes, f"Task states missing from the README diagram: {tasks - nodes}"
