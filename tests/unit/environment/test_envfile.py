"""The local cloud's record and environment (issue 14): trusted only while its process runs; `local
env` exports what `--unset` can undo; `local exec`'s environment drops the caller's session token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_edge.commands.local import local
from mlops_edge.environment import envfile, processes
from mlops_edge.environment.local_daemon import follow, tail_lines

ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4610",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MLOPS_EDGE_MQTT_PORT": "1234",
}


def test_record_is_private_trusted_while_its_process_runs_and_cleared_by_its_writer(tmp_path: Path) -> None:
    (tmp_path / "env.sh").write_text("export AWS_ENDPOINT_URL=stale\n")
    path = envfile.write_env_file(tmp_path, ENV, by="mlops-edge local up")
    assert oct(path.stat().st_mode & 0o777) == "0o600" and not (tmp_path / "env.sh").exists()
    cloud = envfile.running(tmp_path)
    assert cloud is not None and cloud.pid == os.getpid() and cloud.port == 4610
    assert "endpoint_url = http://127.0.0.1:4610" in (tmp_path / envfile.AWS_CONFIG).read_text()
    envfile.clear_env_file(tmp_path)
    assert not path.exists() and envfile.running(tmp_path) is None


def test_a_record_of_a_gone_or_reused_pid_is_stale(tmp_path: Path) -> None:
    envfile.write_env_file(tmp_path, ENV)
    record = json.loads((tmp_path / envfile.RECORD).read_text())
    (tmp_path / envfile.RECORD).write_text(json.dumps({**record, "ticks": record["ticks"] + 1}))
    assert envfile.running(tmp_path) is None  # same PID, another process: not ours
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / envfile.RECORD).write_text(json.dumps({**record, "pid": int(gone.stdout)}))
    assert envfile.running(tmp_path) is None
    (tmp_path / envfile.RECORD).write_text("{half a rec")
    assert envfile.running(tmp_path) is None


DUMP = f"{sys.executable} -c 'import json,os; print(json.dumps(dict(os.environ)))'"


def _bash(script: str, env: dict[str, str]) -> str:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True).stdout


def test_env_then_unset_restores_the_shell_exactly(tmp_path: Path) -> None:
    envfile.write_env_file(tmp_path, ENV)
    cloud = envfile.running(tmp_path)
    assert cloud is not None
    shell = {
        "PATH": os.environ["PATH"],
        "AWS_PROFILE": "mine",
        "AWS_SESSION_TOKEN": "tok",
        "AWS_REGION": "eu-west-1",
    }
    exports = envfile.shell_exports(cloud, shell)
    inside = json.loads(_bash(f"{exports}\n{DUMP}", shell))
    assert inside["AWS_PROFILE"] == envfile.PROFILE and inside["AWS_REGION"] == "us-east-1"
    assert "AWS_SESSION_TOKEN" not in inside and inside["AWS_ENDPOINT_URL"] == ENV["AWS_ENDPOINT_URL"]
    # a second `local env` keeps the first remembered values
    again = envfile.shell_exports(cloud, inside)
    assert json.loads(_restore(again)) == json.loads(inside[envfile.RESTORE_ENV])
    undo = envfile.shell_unset(inside)
    after = json.loads(_bash(f"{exports}\n{undo}\n{DUMP}", shell))
    after = {k: v for k, v in after.items() if k in shell or k.startswith(("AWS_", "MLOPS_EDGE_"))}
    assert after == shell


def _restore(exports: str) -> str:
    line = next(x for x in exports.splitlines() if x.startswith(f"export {envfile.RESTORE_ENV}="))
    return _bash(f'{line}\nprintf %s "${envfile.RESTORE_ENV}"', {"PATH": os.environ["PATH"]})


def test_unset_without_remembered_values_unsets_what_the_cloud_sets() -> None:
    undo = envfile.shell_unset({"AWS_ENDPOINT_URL": "x"})
    assert "unset AWS_ENDPOINT_URL" in undo and "unset AWS_PROFILE" in undo and "export" not in undo


def test_exec_environment_is_the_callers_plus_the_clouds(tmp_path: Path) -> None:
    envfile.write_env_file(tmp_path, ENV)
    cloud = envfile.running(tmp_path)
    assert cloud is not None
    seen = envfile.exec_environ(cloud, {"HOME": "/h", "AWS_SESSION_TOKEN": "t", "AWS_PROFILE": "prod"})
    assert seen["HOME"] == "/h" and seen["AWS_PROFILE"] == envfile.PROFILE and "AWS_SESSION_TOKEN" not in seen
    assert seen["AWS_CONFIG_FILE"] == str(tmp_path.resolve() / envfile.AWS_CONFIG)


@pytest.mark.parametrize("args", [["env"], ["exec", "--", "true"]])
def test_env_and_exec_without_a_cloud_say_how_to_start_one(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(local, [args[0], "--state-dir", str(tmp_path), *args[1:]])
    assert (
        result.exit_code == 1 and "local up --detach" in result.output and result.stdout.count("export") == 0
    )


def test_status_without_a_cloud_exits_1_and_json_says_not_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(local, ["status", "--state-dir", str(tmp_path), "--output", "json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["running"] is False


def test_up_rejects_a_port_out_of_range(tmp_path: Path) -> None:
    result = CliRunner().invoke(local, ["up", "--state-dir", str(tmp_path), "--port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output


def test_up_in_the_foreground_names_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        before = signal.getsignal(signal.SIGINT)
        result = CliRunner().invoke(local, ["up", "--state-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"port {port} on 127.0.0.1 is already in use" in result.output and "--port N" in result.output
    assert not (tmp_path / "cloud" / "endpoint.log").exists()  # no endpoint was started
    assert signal.getsignal(signal.SIGINT) is before  # the caller's Ctrl-C handler is back


def test_descendants_finds_a_child_in_its_own_session_and_alive_checks_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        found = dict(processes.descendants(os.getpid()))
        assert child.pid in found and processes.alive(child.pid, found[child.pid])
        assert not processes.alive(child.pid, found[child.pid] + 1)
        assert processes.kill_all([(child.pid, found[child.pid])]) == [child.pid]
        child.wait(timeout=10)
        assert not processes.alive(child.pid)
    finally:
        child.kill()
        child.wait()


def test_logs_tail_and_follow_handle_partial_lines_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("a\nb\nc\n")
    lines, offset = tail_lines(log, 2)
    assert lines == ["b", "c"] and offset == 6
    log.write_text("a\nb\nc\nd\npart")
    seen: list[str] = []
    follow(log, offset, seen.append, lambda: False, interval=0)
    assert seen == ["d", "part"]
    log.write_text("new\n")  # shorter than where we were: read from the start
    seen.clear()
    follow(log, 99, seen.append, lambda: False, interval=0)
    assert seen == ["new"]


def test_a_run_refuses_a_state_dir_a_running_local_cloud_holds(tmp_path: Path) -> None:
    """Two clouds on one state directory would overwrite each other's saved state."""
    from mlops_edge.commands.run import run

    envfile.write_env_file(tmp_path, ENV, by="mlops-edge local up")  # this process holds it
    result = CliRunner().invoke(run, ["--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"in use by a running local cloud (PID {os.getpid()}, mlops-edge local up)" in result.output
    assert "mlops-edge local stop --state-dir" in result.output
    assert not (tmp_path / "runs").exists()  # refused before anything was made
