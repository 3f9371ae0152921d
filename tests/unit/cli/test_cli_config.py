"""Global --profile/--region, mlops-edge.toml defaults (options win), and completion scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_edge.commands import aws as aws_commands
from mlops_edge.commands.project_config import find
from mlops_edge.main import main
from pipeline import aws as pipeline_aws
from tests.unit.cli.test_cli_output import MACHINE, FakeSfn


@pytest.fixture
def aws_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private AWS config with a `dev` profile; the session choice is undone afterwards."""
    config = tmp_path / "aws-config"
    config.write_text(
        "[default]\nregion = us-east-1\n\n"
        "[profile dev]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:4599\n"
        "aws_access_key_id = AKIADEVDEVDEVDEVDEV0\naws_secret_access_key = dev-secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("MLOPS_EDGE_STATE_MACHINE_ARN", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    # What the CLI exported (use_aws): monkeypatch restores only variables that existed before.
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        os.environ.pop(key, None)
    pipeline_aws.use_profile()


def _capture_client(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`executions list` with a fake Step Functions, recording the real client the session makes."""
    seen: dict[str, Any] = {}
    sfn = FakeSfn()

    def clients() -> tuple[Any, Any]:
        real = pipeline_aws.client("stepfunctions")
        seen.update(region=real.meta.region_name, endpoint=real.meta.endpoint_url, sfn=sfn)
        seen["key"] = real._request_signer._credentials.access_key
        return sfn, None

    monkeypatch.setattr(aws_commands, "_clients", clients)
    return seen


def test_profile_selects_the_profiles_region_endpoint_and_credentials(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_client(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMT")  # an explicit profile wins over it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    result = CliRunner().invoke(main, ["--profile", "dev", "executions", "list", "--state-machine", MACHINE])
    assert result.exit_code == 0, result.output
    assert (seen["region"], seen["endpoint"]) == ("eu-west-3", "http://127.0.0.1:4599")
    assert seen["key"] == "AKIADEVDEVDEVDEVDEV0"
    assert os.environ["AWS_PROFILE"] == "dev"  # child processes agree

    result = CliRunner().invoke(
        main, ["--profile", "dev", "--region", "ap-south-1", "executions", "list", "--state-machine", MACHINE]
    )
    assert result.exit_code == 0, result.output
    assert seen["region"] == "ap-south-1"


def test_aws_profile_from_the_environment_is_honoured(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _capture_client(monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "dev")
    result = CliRunner().invoke(main, ["executions", "list", "--state-machine", MACHINE])
    assert result.exit_code == 0, result.output
    assert seen["endpoint"] == "http://127.0.0.1:4599"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_missing_profile_is_a_clear_error(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    args = ["executions", "list"]
    if how == "option":
        args = ["--profile", "prod", *args]
    else:
        monkeypatch.setenv("AWS_PROFILE", "prod")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "The config profile (prod) could not be found" in result.output
    assert "profiles in" in result.output and "dev" in result.output
    assert "Traceback" not in result.output


def test_profile_on_a_local_only_command_is_refused(aws_home: Path) -> None:
    result = CliRunner().invoke(main, ["--profile", "dev", "run", "--devices", "1"])
    assert result.exit_code == 2 and "--profile applies to the commands that talk to AWS" in result.output


def test_toml_defaults_apply_and_options_win(aws_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_client(monkeypatch)
    (aws_home / "mlops-edge.toml").write_text(
        '[default]\nprofile = "dev"\nregion = "eu-central-1"\noutput = "json"\n'
        f'state-machine = "{MACHINE}"\n\n[executions.list]\nmax = 7\n'
    )
    result = CliRunner().invoke(main, ["executions", "list"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state_machine_arn"] == MACHINE
    assert seen["sfn"].asked["maxResults"] == 7
    assert (seen["region"], seen["endpoint"]) == ("eu-central-1", "http://127.0.0.1:4599")

    result = CliRunner().invoke(
        main, ["--region", "us-west-2", "executions", "list", "--max", "3", "--output", "table"]
    )
    assert result.exit_code == 0, result.output
    assert seen["sfn"].asked["maxResults"] == 3 and seen["region"] == "us-west-2"
    assert "run-a" in result.output and not result.output.lstrip().startswith("{")


def test_toml_paths_are_relative_to_the_file_and_shared_keys_reach_each_command(aws_home: Path) -> None:
    from mlops_edge.commands.local import local
    from mlops_edge.commands.project_config import load
    from mlops_edge.commands.run import run

    path = aws_home / "mlops-edge.toml"
    path.write_text('[default]\nstate_dir = ".state"\ndevices = 3\ndataset = "wine"\n[run]\nkeep = true\n')
    config = load(path, {"run", "local"})
    assert config.command_defaults(run, ("run",)) == {
        "state_dir": str(aws_home / ".state"),
        "devices": 3,
        "demo": "wine",
        "keep": True,
    }
    assert config.command_defaults(local, ("local",))["up"]["state_dir"] == str(aws_home / ".state")
    from mlops_edge.commands.mqtt import mqtt

    path.write_text('[default]\noutput = "json"\n')  # the listings' choice; `mqtt sub` has text|jsonl
    config = load(path, {"mqtt"})
    assert config.command_defaults(mqtt, ("mqtt",))["sub"] == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[default]\nregoin = 'x'\n", "unknown key 'regoin' in [default]"),
        ("[executions.list]\nmaximum = 3\n", "unknown key 'maximum' in [executions.list]"),
        ("[deploy]\nx = 1\n", "unknown table [deploy]"),
        ("[default]\nregion = \n", "is not valid TOML"),
        ("[default]\nregion = 5\n", "[default] region must be a string"),
        (
            "[executions.list]\nmax = 'lots'\n",
            "[executions.list] max = 'lots': 'lots' is not a valid integer range",
        ),
    ],
)
def test_bad_config_names_the_file_and_the_key(aws_home: Path, text: str, says: str) -> None:
    path = aws_home / "mlops-edge.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["executions", "list"])
    assert result.exit_code == 1, result.output
    assert str(path) in result.output and says in result.output
    assert "Traceback" not in result.output


def test_config_file_option_and_discovery_up_to_the_git_root(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "src" / "deep").mkdir(parents=True)
    (tmp_path / "mlops-edge.toml").write_text("[default]\n")  # above the git root: never used
    assert find(project / "src" / "deep") is None
    (project / "mlops-edge.toml").write_text("[default]\n")
    assert find(project / "src" / "deep") == project / "mlops-edge.toml"
    other = tmp_path / "other.toml"
    other.write_text("[default]\nnonsense = 1\n")
    result = CliRunner().invoke(main, ["--config-file", str(other), "devices"])
    assert result.exit_code == 1 and "unknown key 'nonsense'" in result.output


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _mlops_edge_completion mlops-edge"),
        ("zsh", "#compdef mlops-edge"),
        ("fish", "complete --no-files --command mlops-edge"),
    ],
)
def test_completion_prints_clicks_script_for_each_shell(shell: str, marker: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output and f"_MLOPS_EDGE_COMPLETE={shell}_complete" in result.output


def test_the_completion_callback_completes_command_names() -> None:
    env = {
        **os.environ,
        "_MLOPS_EDGE_COMPLETE": "bash_complete",
        "COMP_WORDS": "mlops-edge exec",
        "COMP_CWORD": "1",
    }
    code = "import sys; from mlops_edge.main import main; main(prog_name='mlops-edge')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["plain,execute", "plain,executions"], result.stderr


@pytest.mark.parametrize(
    ("args", "expected"), [([], "ca-central-1"), (["--region", "eu-north-1"], "eu-north-1")]
)
def test_the_global_region_reaches_device_run_above_aws_region(
    aws_home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    import edge_runtime.core
    import edge_runtime.core.runner

    seen: dict[str, Any] = {}
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    monkeypatch.setattr(edge_runtime.core.Identity, "from_env", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(
        edge_runtime.core.runner, "run_core", lambda settings: seen.setdefault("s", settings) and 0
    )
    root = aws_home / "core"
    result = CliRunner().invoke(main, [*args, "device", "run", "--thing", "t1", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert seen["s"].region == expected


def test_a_malformed_region_is_a_clear_error(aws_home: Path) -> None:
    result = CliRunner().invoke(
        main, ["--region", "not a region!", "executions", "list", "--state-machine", MACHINE]
    )
    assert result.exit_code == 1 and "Provided region_name 'not a region!'" in result.output
    assert "Traceback" not in result.output
