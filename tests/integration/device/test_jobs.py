"""The core's IoT Jobs client (awsiot.iotjobs) on the real broker: both ways a job arrives,
execution updates with status details, rejected updates, and a reconnection with a clean session.

Deployments here name no components (a group of their own), so no model is built and nothing
runs; what is under test is the jobs traffic.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.core import Core, CoreSettings, Identity
from edge_runtime.core.components import Cloud
from pipeline.mqtt import MqttClient, MqttSettings
from tests.integration.device.harness import FakeGreengrass, Operator

pytestmark = pytest.mark.integration

GROUP = "thinggroup/jobs-tests"


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def identity(local_cloud: Any) -> Any:
    return local_cloud.provision_device(f"jobs-{uuid.uuid4().hex[:6]}", thing_group="jobs-tests")


@pytest.fixture(scope="module")
def core(local_cloud: Any, identity: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    ident = identity
    settings = CoreSettings(
        root=Path(tmp_path_factory.mktemp("jobs")) / "core",
        identity=Identity(
            ident.thing_name, ident.cert_path, ident.key_path, ident.ca_path, ident.mqtt_host, ident.mqtt_port
        ),
        heartbeat_s=60.0,
        deployment_timeout_s=10.0,
        settle_s=0.1,
    )
    core = Core(settings, cloud=Cloud(greengrass=FakeGreengrass(), s3=local_cloud.client("s3")))
    core.start()
    try:
        yield core
    finally:
        core.stop()


@pytest.fixture(scope="module")
def operator(local_cloud: Any) -> Iterator[Operator]:
    op = Operator(local_cloud)
    try:
        yield op
    finally:
        op.close()


@pytest.mark.parametrize("answering_next", [False, True], ids=["notify-next", "next-get-accepted"])
def test_a_job_starts_a_deployment_and_its_status_reaches_the_cloud(
    core: Core, operator: Operator, answering_next: bool
) -> None:
    status = operator.deploy(core.thing, {}, group=GROUP, timeout=20, answering_next=answering_next)
    assert status["status"] == "SUCCEEDED", status
    assert status["statusDetails"] == {"detailed-deployment-status": "SUCCESSFUL"}
    assert GROUP in core.current_target().groups


def test_an_unusable_job_document_is_rejected_with_details(core: Core, operator: Operator) -> None:
    status = operator.deploy(core.thing, {"com.example.NoVersion": {}}, group=GROUP, timeout=20)
    assert status["status"] == "REJECTED", status
    assert status["statusDetails"]["detailed-deployment-status"] == "REJECTED"
    assert "com.example.NoVersion" in status["statusDetails"]["deployment-failure-cause"]


def test_a_rejected_update_is_logged_and_kept(
    core: Core, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = f"job-{uuid.uuid4().hex[:8]}"
    rejection = {
        "code": "InvalidStateTransition",
        "message": "the execution is CANCELED",
        "clientToken": job_id,
        "timestamp": int(time.time()),
    }
    with caplog.at_level(logging.WARNING, logger="edge_runtime.core.deployment"):
        operator.client.publish(f"$aws/things/{core.thing}/jobs/{job_id}/update/rejected", rejection)
        error = _wait(
            lambda: next((e for e in core.jobs.rejections if e.client_token == job_id), None), 10, "rejection"
        )
    assert (error.code, error.message) == ("InvalidStateTransition", "the execution is CANCELED")
    assert any(
        "InvalidStateTransition" in r.getMessage() and job_id in r.getMessage() for r in caplog.records
    )


def test_after_a_clean_reconnect_the_core_asks_again_and_still_gets_jobs(
    core: Core, operator: Operator, identity: Any
) -> None:
    """A second connection with the core's client id makes the broker drop the core's session."""
    asked = f"$aws/things/{core.thing}/jobs/$next/get"
    operator.watch(asked)
    before = len([m for m in operator.messages if m[0] == asked])
    settings = MqttSettings(
        host=identity.mqtt_host,
        port=identity.mqtt_port,
        ca_path=str(identity.ca_path),
        cert_path=str(identity.cert_path),
        key_path=str(identity.key_path),
        client_id=identity.thing_name,
    )
    MqttClient(settings).close()
    _wait(lambda: len([m for m in operator.messages if m[0] == asked]) > before, 15, "a new $next request")
    request = next(p for t, p in reversed(operator.messages) if t == asked)
    assert json.loads(request) == {"clientToken": f"{core.thing}-next"}
    _wait(lambda: core.iot.connected, 15, "the core to be connected")
    status = operator.deploy(core.thing, {}, group=GROUP, timeout=20)
    assert status["status"] == "SUCCEEDED", status
