"""The interpreter the inference component runs on, on the EC2 core.

The nucleus runs lifecycle scripts as ``sudo -E -u ggc_user sh -c ...``; sudo replaces PATH with
its ``secure_path`` (Amazon Linux 2023: ``/sbin:/bin:/usr/sbin:/usr/bin``), where a bare
``python3`` is the OS's 3.9. So the user data installs Python 3.11 from the AL2023 repository and
the recipe builds its venv with that interpreter by absolute path. The local simulated core passes
its own interpreter as ``PythonPath`` and never builds the venv.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.app import REPO_ROOT
from infra.nucleus_install import CORE_PYTHON, nucleus_user_data

pytestmark = pytest.mark.infra

RECIPE = REPO_ROOT / "components" / "inference" / "recipe.yaml"
#: sudo's secure_path on Amazon Linux 2023 (/etc/sudoers).
AL2023_SECURE_PATH = ("/sbin", "/bin", "/usr/sbin", "/usr/bin")


def _user_data() -> str:
    return nucleus_user_data(
        region="eu-west-1",
        thing_name="core-1",
        thing_group_name="fleet",
        thing_policy_name="fleet-core-policy",
        tes_role_name="fleet-TokenExchangeRole",
        tes_role_alias_name="fleet-TokenExchangeRoleAlias",
        nucleus_version="latest",
    )


def _recipe() -> dict[str, Any]:
    return yaml.safe_load(RECIPE.read_text())


def _lifecycle() -> dict[str, Any]:
    (manifest,) = _recipe()["Manifests"]
    return manifest["Lifecycle"]


def _render(script: str, *, configuration: dict[str, Any], work: Path, artifacts: Path) -> str:
    """The script as the nucleus runs it: recipe variables and build placeholders filled in."""
    script = script.replace("{{MODEL_COMPONENT_NAME}:artifacts:decompressedPath}", str(artifacts / "model"))
    script = script.replace("{ARTIFACT_NAME}", "inference")
    script = script.replace("{work:path}", str(work)).replace("{artifacts:decompressedPath}", str(artifacts))
    return re.sub(r"\{configuration:/(\w+)\}", lambda m: str(configuration[m.group(1)]), script)


def test_user_data_installs_python311_from_the_os_repository() -> None:
    script = _user_data()
    (install,) = [line for line in script.splitlines() if line.startswith("dnf install")]
    assert "python3.11" in install.split() and "python3.11-pip" in install.split()
    assert f"{CORE_PYTHON} -m venv --help" in script  # proven before the nucleus ever runs the recipe
    assert "/usr/local/bin" not in script  # sudo's secure_path would hide it anyway


def test_recipe_builds_its_venv_with_the_installed_interpreter_by_absolute_path() -> None:
    defaults = _recipe()["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["PythonPath"] == ""  # on AWS the component builds its own venv
    base = defaults["VenvPython"]
    assert base == CORE_PYTHON and os.path.isabs(base)
    # An absolute path is never looked up on PATH; this one is also inside sudo's secure_path.
    assert os.path.dirname(base) in AL2023_SECURE_PATH
    script = _render(
        _lifecycle()["Install"]["Script"], configuration=defaults, work=Path("/w"), artifacts=Path("/a")
    )
    (venv,) = [shlex.split(line) for line in script.splitlines() if "-m venv" in line]
    assert venv[0] == "$BASE" and f'BASE="{CORE_PYTHON}"' in script
    for name, step in _lifecycle().items():
        text = step.get("Script", "") if isinstance(step, dict) else step
        bare = re.findall(r"(?:^|[\s;&|(])(python3?(?:\.\d+)?) ", text)
        assert not bare, f"{name} runs {bare} by name: sudo's secure_path decides which one that is"


def _fake_interpreter(path: Path, log: Path) -> None:
    """Logs its arguments; as ``python -m venv --clear DIR`` it makes DIR/bin/python (same kind)."""
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$0 $*" >> {log}\n'
        'if [ "$1 $2" = "-m venv" ]; then\n'
        '  mkdir -p "$4/bin" && cp "$0" "$4/bin/python"\n'
        "fi\n"
    )
    path.chmod(0o755)


def test_install_uses_venv_python_and_rebuilds_only_on_change(tmp_path: Path) -> None:
    """Run the rendered Install step with a stand-in interpreter: the venv is built with the
    configured absolute path, reused while nothing changed, and rebuilt when requirements change."""
    log = tmp_path / "calls.log"
    base = tmp_path / "python3.11"
    _fake_interpreter(base, log)
    artifacts, work = tmp_path / "artifacts", tmp_path / "work"
    (artifacts / "inference").mkdir(parents=True)
    requirements = artifacts / "inference" / "requirements.txt"
    requirements.write_text("numpy==2.2.6\n")
    defaults = _recipe()["ComponentConfiguration"]["DefaultConfiguration"]
    configuration = {**defaults, "VenvPython": str(base)}
    script = _render(
        _lifecycle()["Install"]["Script"], configuration=configuration, work=work, artifacts=artifacts
    )
    env = {"PATH": "/usr/bin:/bin"}  # what sudo leaves: no python of ours on it

    def install() -> list[str]:
        log.unlink(missing_ok=True)
        subprocess.run(["sh", "-c", script], check=True, env=env, cwd=tmp_path)
        return log.read_text().splitlines()

    venv_python = work / "venv" / "bin" / "python"
    first = install()
    assert first[0] == f"{base} -m venv --clear {work / 'venv'}"
    assert first[1].startswith(f"{venv_python} -m pip install") and str(requirements) in first[1]
    # the accelerated engine's custom operator is built with the same interpreter, then checked
    assert first[2].startswith(f"{venv_python} -m edge_runtime.inference.accel build --out ")
    assert first[3].startswith(f"{venv_python} -m inference_component check")
    assert install() == first[2:]  # nothing changed: the venv is reused
    requirements.write_text("numpy==2.2.6\nonnxruntime==1.22.0\n")
    assert install()[0].startswith(f"{base} -m venv --clear")


@pytest.mark.parametrize(
    ("venv_python", "message"), [("python3", "absolute path"), ("/nonexistent/python3.11", "not installed")]
)
def test_install_refuses_an_interpreter_it_cannot_trust(
    tmp_path: Path, venv_python: str, message: str
) -> None:
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "requirements.txt").write_text("numpy\n")
    defaults = _recipe()["ComponentConfiguration"]["DefaultConfiguration"]
    script = _render(
        _lifecycle()["Install"]["Script"],
        configuration={**defaults, "VenvPython": venv_python},
        work=tmp_path / "work",
        artifacts=tmp_path,
    )
    done = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 1 and message in done.stderr
    assert not (tmp_path / "work" / "venv").exists()


def test_local_runs_pass_their_own_interpreter() -> None:
    """The simulated core path is untouched: a ``PythonPath`` skips the venv entirely."""
    defaults = _recipe()["ComponentConfiguration"]["DefaultConfiguration"]
    script = _render(
        _lifecycle()["Install"]["Script"],
        configuration={**defaults, "PythonPath": "/opt/local/python"},
        work=Path("/w"),
        artifacts=Path("/a"),
    )
    assert 'PY="/opt/local/python"' in script and 'if [ -z "$PY" ]' in script
