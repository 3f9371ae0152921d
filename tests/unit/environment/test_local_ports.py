"""`local up`'s fixed ports (issue 14): the broker gets one too (4611, `--mqtt-port`,
``$MLOPS_EDGE_LOCAL_MQTT_PORT``), a taken one is a one-line error naming it and the way out, before
any process starts, and `local status` shows both ports from the record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from local_cloud.ports import free_port
from mlops_edge.commands import local as command
from mlops_edge.environment import envfile, local_daemon, processes

ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:4610",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MLOPS_EDGE_MQTT_HOST": "127.0.0.1",
    "MLOPS_EDGE_MQTT_PORT": "4611",
}


def _option(name: str) -> object:
    return next(p for p in command.up.params if p.name == name)


def test_the_commands_defaults_are_the_daemons() -> None:
    """local.py repeats them so --help imports nothing heavy; they must not drift apart."""
    assert (command.DEFAULT_PORT, command.PORT_ENV) == (local_daemon.DEFAULT_PORT, local_daemon.PORT_ENV)
    assert (command.DEFAULT_MQTT_PORT, command.MQTT_PORT_ENV) == (
        local_daemon.DEFAULT_MQTT_PORT,
        local_daemon.MQTT_PORT_ENV,
    )
    mqtt = _option("mqtt_port")
    assert (mqtt.default, mqtt.envvar) == (4611, "MLOPS_EDGE_LOCAL_MQTT_PORT")  # type: ignore[attr-defined]
    assert local_daemon.DEFAULT_MQTT_PORT < 32768  # below Linux's ephemeral range: no run lands on it


def test_up_rejects_an_mqtt_port_out_of_range(tmp_path: Path) -> None:
    result = CliRunner().invoke(command.local, ["up", "--state-dir", str(tmp_path), "--mqtt-port", "70000"])
    assert result.exit_code == 2 and "70000" in result.output and "--mqtt-port" in result.output


@pytest.mark.parametrize("detach", [False, True])
def test_a_taken_mqtt_port_from_the_environment_is_named_and_nothing_starts(
    tmp_path: Path, taken: int, detach: bool
) -> None:
    before = {pid for pid, _ in processes.descendants(os.getpid())}
    args = ["up", "--state-dir", str(tmp_path), "--port", str(free_port()), *(["--detach"] if detach else [])]
    result = CliRunner().invoke(command.local, args, env={"MLOPS_EDGE_LOCAL_MQTT_PORT": str(taken)})
    assert result.exit_code == 1 and "Traceback" not in result.output
    error = result.output.strip()
    assert len(error.splitlines()) == 1, error
    assert f"MQTT port {taken} on 127.0.0.1 is already in use" in error
    assert "--mqtt-port N" in error and "MLOPS_EDGE_LOCAL_MQTT_PORT" in error
    assert not (tmp_path / "cloud" / "endpoint.log").exists() and not (tmp_path / "local.log").exists()
    assert not (tmp_path / "local.json").exists()
    assert {pid for pid, _ in processes.descendants(os.getpid())} == before  # no child was started


def test_the_option_wins_over_the_environment(tmp_path: Path, taken: int) -> None:
    mine = free_port()
    args = ["up", "--state-dir", str(tmp_path), "--port", str(mine), "--mqtt-port", str(taken)]
    result = CliRunner().invoke(command.local, args, env={"MLOPS_EDGE_LOCAL_MQTT_PORT": "0"})
    assert result.exit_code == 1 and f"MQTT port {taken} " in result.output


def test_one_port_for_both_is_refused_before_anything_starts(tmp_path: Path) -> None:
    port = str(free_port())
    args = ["up", "--state-dir", str(tmp_path), "--port", port, "--mqtt-port", port]
    result = CliRunner().invoke(command.local, args)
    assert result.exit_code == 1 and f"cannot share port {port}" in result.output
    assert not (tmp_path / "cloud").exists()


def test_the_record_gives_the_brokers_host_and_port(tmp_path: Path) -> None:
    envfile.write_env_file(tmp_path, ENV)
    cloud = envfile.running(tmp_path)
    assert cloud is not None
    assert (cloud.mqtt_host, cloud.mqtt_port, cloud.mqtt_url) == ("127.0.0.1", 4611, "mqtts://127.0.0.1:4611")
    about = cloud.as_dict()
    assert (about["port"], about["mqtt_host"], about["mqtt_port"]) == (4610, "127.0.0.1", 4611)
    envfile.write_env_file(tmp_path, {"AWS_ENDPOINT_URL": "http://127.0.0.1:4610"})  # an older record
    older = envfile.running(tmp_path)
    assert older is not None and (older.mqtt_port, older.mqtt_url) == (0, "")


def test_status_shows_both_ports_even_when_the_health_check_does_not_answer(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens: the health check fails at once
    envfile.write_env_file(tmp_path, {**ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}"})
    table = CliRunner().invoke(command.local, ["status", "--state-dir", str(tmp_path)])
    assert table.exit_code == 2 and "NOT healthy" in table.output
    assert f"AWS endpoint http://127.0.0.1:{closed}; MQTT mqtts://127.0.0.1:4611 (mTLS)" in table.output
    shown = CliRunner().invoke(command.local, ["status", "--state-dir", str(tmp_path), "-o", "json"])
    report = json.loads(shown.stdout)
    assert (report["port"], report["mqtt_host"], report["mqtt_port"]) == (closed, "127.0.0.1", 4611)


def test_a_detached_child_that_exits_is_reported_by_its_own_error_line(tmp_path: Path) -> None:
    """A port taken after the parent's check: the child's one-line error, not 15 lines of log."""
    log = tmp_path / "local.log"
    log.write_text(
        "==> 2026-11-27T19:00:00Z mlops-edge local up\nError: MQTT port 4611 on 127.0.0.1 is taken\n"
    )
    assert local_daemon._why_not_started(log) == f"MQTT port 4611 on 127.0.0.1 is taken (log: {log})"
    log.write_text("Traceback (most recent call last):\nSomethingElse: broke\n")
    said = local_daemon._why_not_started(log)
    assert said.startswith("the local cloud did not start:\n") and "SomethingElse: broke" in said
