"""A local cloud that stays up (issue 14): `local up --detach`, `status`, `exec`, `env`, `logs`, `stop`.

One detached cloud serves the whole module, started by the real CLI in a real child process on
ports of its own, given explicitly as a user gives fixed ones (free ephemeral ones, so the module
runs beside other tests and a user's cloud on the default ports). The last test stops it and
checks, by PID, that nothing it started remains: the holder, the endpoint, mosquitto, the console
and a Lambda worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_cloud.ports import free_port
from mlops_edge.environment import processes
from tests.integration.local_cloud.conftest import handler_zip, wait_until

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "mlops_edge.main", "local"]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ)
    )


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`local up --detach` on ports of its own; stopped at the end whatever happened."""
    state = tmp_path_factory.mktemp("detached")
    port, mqtt_port = free_port(), free_port()
    ports = ["--port", str(port), "--mqtt-port", str(mqtt_port)]
    started = cli("up", "--detach", "--state-dir", str(state), *ports, timeout=240)
    assert started.returncode == 0, started.stderr + started.stdout
    record = json.loads((state / "local.json").read_text())
    try:
        yield {
            "state": state,
            "port": port,
            "mqtt_port": mqtt_port,
            "record": record,
            "up_output": started.stdout,
        }
    finally:
        cli("stop", "--state-dir", str(state))


def test_up_detach_returns_once_healthy_and_says_how_to_use_it(cloud: dict[str, Any]) -> None:
    record = cloud["record"]
    assert (
        record["detached"] is True
        and record["env"]["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{cloud['port']}"
        and record["env"]["MLOPS_EDGE_MQTT_PORT"] == str(cloud["mqtt_port"])
    )
    assert processes.alive(record["pid"], record["ticks"])
    assert f"PID {record['pid']}" in cloud["up_output"] and "local stop" in cloud["up_output"]
    assert f"MQTT mqtts://127.0.0.1:{cloud['mqtt_port']}" in cloud["up_output"]


def test_status_reports_each_service_healthy(cloud: dict[str, Any]) -> None:
    shown = cli("status", "--state-dir", str(cloud["state"]), "--output", "json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    assert report["running"] and report["healthy"] and report["pid"] == cloud["record"]["pid"]
    assert (report["port"], report["mqtt_port"]) == (cloud["port"], cloud["mqtt_port"])
    services = report["health"]["services"]
    assert set(services) == {"endpoint", "broker", "lambda", "devices", "iam"}
    assert services["endpoint"]["port"] == cloud["port"] and services["endpoint"]["started_at"]
    assert services["broker"]["up"] and services["broker"]["port"] == cloud["mqtt_port"]
    assert services["broker"]["host"] == "127.0.0.1"
    assert services["broker"]["connected_clients"] >= 1  # the Greengrass control plane's client
    assert services["iam"]["mode"] in {"enforce", "audit", "off"}
    table = cli("status", "--state-dir", str(cloud["state"]))
    assert table.returncode == 0 and "healthy" in table.stdout and "broker" in table.stdout
    assert f"MQTT mqtts://127.0.0.1:{cloud['mqtt_port']}" in table.stdout


def test_starting_twice_names_the_running_pid_and_a_taken_port_is_named(
    cloud: dict[str, Any], tmp_path: Path
) -> None:
    again = cli("up", "--detach", "--state-dir", str(cloud["state"]), "--port", str(free_port()))
    assert again.returncode == 1
    assert f"PID {cloud['record']['pid']}" in again.stderr and "local stop" in again.stderr
    taken = cli("up", "--detach", "--state-dir", str(tmp_path), "--port", str(cloud["port"]))
    assert taken.returncode == 1 and "Traceback" not in taken.stderr
    assert f"port {cloud['port']} on 127.0.0.1 is already in use" in taken.stderr and "--port" in taken.stderr
    assert not (tmp_path / "local.json").exists()


def test_an_mqtt_port_another_cloud_holds_is_named_and_leaves_no_process(
    cloud: dict[str, Any], tmp_path: Path
) -> None:
    """Taken by the module cloud's mosquitto: refused by `local up` before it starts anything; and
    the endpoint process itself, had the port been taken after that check, exits naming it."""
    mine = ["--port", str(free_port()), "--mqtt-port", str(cloud["mqtt_port"])]
    for detach in (["--detach"], []):
        taken = cli("up", *detach, "--state-dir", str(tmp_path), *mine)
        assert taken.returncode == 1 and "Traceback" not in taken.stderr
        assert taken.stderr.strip() == (
            f"Error: MQTT port {cloud['mqtt_port']} on 127.0.0.1 is already in use by another process "
            f"(another local cloud? a mosquitto?); stop it, or choose another port: "
            f"mlops-edge local up --mqtt-port N (or set MLOPS_EDGE_LOCAL_MQTT_PORT)"
        )
        assert not (tmp_path / "local.json").exists() and _processes_naming(tmp_path) == []
    endpoint = subprocess.run(
        [sys.executable, "-m", "local_cloud", "serve", "--state-dir", str(tmp_path / "cloud"), *mine],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert endpoint.returncode == 1 and "Traceback" not in endpoint.stderr
    assert f"MQTT port {cloud['mqtt_port']} on 127.0.0.1 is already in use" in endpoint.stderr
    assert not (tmp_path / "cloud" / "endpoint.json").exists() and _processes_naming(tmp_path) == []


def _processes_naming(path: Path) -> list[int]:
    """PIDs whose command line names ``path`` (a holder, endpoint or mosquitto started for it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(path).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_exec_runs_the_aws_cli_against_the_cloud_without_touching_the_callers_environment(
    cloud: dict[str, Any],
) -> None:
    name = _state_machine(cloud)
    before = dict(os.environ)
    caller = {**os.environ, "AWS_PROFILE": "someone-elses", "AWS_SESSION_TOKEN": "not-for-the-local-cloud"}
    caller.pop("AWS_ENDPOINT_URL", None)
    listed = cli(
        "exec", "--state-dir", str(cloud["state"]), "--", "aws", "stepfunctions", "list-state-machines",
        env=caller,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert name in [m["name"] for m in json.loads(listed.stdout)["stateMachines"]]
    # what the command saw: the cloud's endpoint and profile; no session token of the caller's
    shown = cli("exec", "--state-dir", str(cloud["state"]), "--", sys.executable, "-c",
                "import json, os; print(json.dumps(dict(os.environ)))", env=caller)  # fmt: skip
    seen = json.loads(shown.stdout)
    assert seen["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{cloud['port']}"
    assert seen["AWS_PROFILE"] == "mlops-edge-local" and "AWS_SESSION_TOKEN" not in seen
    assert "endpoint_url = " in Path(seen["AWS_CONFIG_FILE"]).read_text()
    assert dict(os.environ) == before  # this process's own environment is as it was
    # the exit status is the command's
    assert cli("exec", "--state-dir", str(cloud["state"]), "--", "sh", "-c", "exit 7").returncode == 7
    missing = cli("exec", "--state-dir", str(cloud["state"]), "--", "no-such-command-here")
    assert missing.returncode == 127 and "command not found" in missing.stderr


def test_env_and_unset_round_trip_in_a_real_shell(cloud: dict[str, Any]) -> None:
    """eval "$(local env)" points a bash at the cloud; eval "$(local env --unset)" puts it back."""
    flag = f"--state-dir {cloud['state']}"
    local = f"{sys.executable} -m mlops_edge.main local"
    script = (
        f'eval "$({local} env {flag})" && echo "IN $AWS_PROFILE $AWS_ENDPOINT_URL" && '
        f'eval "$({local} env --unset {flag})" && echo "OUT ${{AWS_PROFILE-none}} ${{AWS_ENDPOINT_URL-none}}"'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, env={**env, "AWS_PROFILE": "mine"}
    )
    assert done.returncode == 0, done.stderr
    assert f"IN mlops-edge-local http://127.0.0.1:{cloud['port']}" in done.stdout
    assert "OUT mine none" in done.stdout


def _client(cloud: dict[str, Any], service: str) -> Any:
    env = cloud["record"]["env"]
    return boto3.session.Session().client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_REGION"],
    )


def _role(cloud: dict[str, Any], service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    role = _client(cloud, "iam").create_role(
        RoleName=f"daemon-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


def _state_machine(cloud: dict[str, Any]) -> str:
    """A state machine only this cloud has: the AWS CLI must list it."""
    name = f"daemon-{uuid.uuid4().hex[:8]}"
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    _client(cloud, "stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=_role(cloud, "states.amazonaws.com")
    )
    return name


def _lambda_worker(cloud: dict[str, Any]) -> None:
    """Create a function, so the endpoint starts (pre-warms) a worker process for it."""
    _client(cloud, "lambda").create_function(
        FunctionName=f"double-{uuid.uuid4().hex[:6]}",
        Runtime="python3.11",
        Role=_role(cloud, "lambda.amazonaws.com"),
        Handler="sfn_handlers.double",
        Code={"ZipFile": handler_zip()},
    )


def test_logs_tail(cloud: dict[str, Any]) -> None:
    shown = cli("logs", "--state-dir", str(cloud["state"]), "--tail", "2")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 2
    up = cli("logs", "--state-dir", str(cloud["state"]), "--source", "up")
    assert "local cloud ready" in up.stdout


def test_stop_leaves_no_process_by_pid(cloud: dict[str, Any]) -> None:
    """Last: the holder, endpoint, mosquitto, console and a Lambda worker all end."""
    _lambda_worker(cloud)

    def workers() -> int:
        report = json.loads(cli("status", "--state-dir", str(cloud["state"]), "-o", "json").stdout)
        return int(report["health"]["services"]["lambda"]["workers"])

    wait_until(workers, timeout=60, interval=0.5)
    holder = cloud["record"]["pid"]
    tree = [(holder, cloud["record"]["ticks"]), *processes.descendants(holder)]
    endpoint = json.loads((cloud["state"] / "cloud" / "endpoint.json").read_text())
    console = json.loads((cloud["state"] / "console.json").read_text())
    found = {pid for pid, _ in tree}
    assert {endpoint["pid"], endpoint["mosquitto_pid"], console["pid"]} <= found and len(found) >= 5
    stopped = cli("stop", "--state-dir", str(cloud["state"]))
    assert stopped.returncode == 0 and "local cloud stopped" in stopped.stdout, stopped.stderr
    left = [pid for pid, ticks in tree if processes.alive(pid, ticks)]
    assert left == [], f"still running after stop: {left}"
    assert not (cloud["state"] / "local.json").exists()
    after = cli("status", "--state-dir", str(cloud["state"]))
    assert after.returncode == 1 and "no local cloud runs" in after.stderr


def test_a_restart_keeps_both_ports(cloud: dict[str, Any]) -> None:
    """After the stop above: the same fixed ports are usable at once (connections the old broker
    and endpoint closed linger in TIME_WAIT, which must not count as taken), so an exported
    environment stays valid. Stopped again by the fixture."""
    ports = ["--port", str(cloud["port"]), "--mqtt-port", str(cloud["mqtt_port"])]
    again = cli("up", "--detach", "--no-console", "--state-dir", str(cloud["state"]), *ports, timeout=240)
    assert again.returncode == 0, again.stderr + again.stdout
    record = json.loads((cloud["state"] / "local.json").read_text())
    assert record["pid"] != cloud["record"]["pid"]
    where = ("AWS_ENDPOINT_URL", "MLOPS_EDGE_MQTT_HOST", "MLOPS_EDGE_MQTT_PORT")
    assert [record["env"][k] for k in where] == [cloud["record"]["env"][k] for k in where]
    assert cli("stop", "--state-dir", str(cloud["state"])).returncode == 0
    assert not processes.alive(record["pid"], record["ticks"])
