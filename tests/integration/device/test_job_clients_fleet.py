"""Lightweight job clients through a two-stage rollout on the real local cloud (issue 12).

100 job clients (``mlops_edge.environment.job_clients``: own certificates, real MQTT connections,
awsiot's IotJobsClient) in one process, on the session's local cloud with its "minute" shortened:
a canary stage (10 devices moved to their own thing group) succeeds, then the fleet stage's
deployment, rolled out 10 things a minute with ``abortConfig`` FAILED 10 % with
``minNumberOfExecutedThings`` 10, is canceled at exactly the 10th executed device: its first two
devices fail at once (100 % failed, but fewer than 10 executed), the job goes on until 10 ended
(2 of 10, 20 % > 10 %), and the other 80 are never notified. The 1,000-client run is
``bench/fleet_jobs.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_cloud.mqtt.ca import CertificateAuthority
from mlops_edge.environment.job_clients import JobClientFleet, job_client_names
from mlops_edge.environment.things import register_certificate

pytestmark = pytest.mark.integration

COUNT = 100
CANARY = 10
#: Long enough for 10 devices to finish within one local minute on a loaded machine.
MINUTE_S = 4.0
ACCOUNT = "123456789012"


def _group_arn(group: str) -> str:
    return f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}"


@pytest.fixture
def component(local_cloud) -> str:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name = f"com.test.Jobs{uuid.uuid4().hex[:6]}"
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Lifecycle": {}}],
    }
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    deadline = time.monotonic() + 30
    while gg.describe_component(arn=arn)["status"]["componentState"] != "DEPLOYABLE":
        assert time.monotonic() < deadline, "component never became DEPLOYABLE"
        time.sleep(0.1)
    return name


@pytest.fixture
def fleet(local_cloud, tmp_path: Path) -> Iterator[JobClientFleet]:  # type: ignore[no-untyped-def]
    prefix = f"jc-{uuid.uuid4().hex[:6]}-"
    names = job_client_names(COUNT, prefix)
    fleet_names = names[CANARY:]
    clients = JobClientFleet(
        local_cloud,
        root=tmp_path / "clients",
        thing_group=f"{prefix}fleet",
        names=names,
        failing=fleet_names[:2],  # the fleet stage's first two devices fail their install
    )
    local_cloud.set_job_timeout_minute(MINUTE_S)
    try:
        with clients:
            clients.start()
            yield clients
    finally:
        local_cloud.set_job_timeout_minute(60.0)


def _deploy(local_cloud: Any, group: str, component: str, iot_job: dict[str, Any]) -> dict[str, Any]:
    gg = local_cloud.client("greengrassv2")
    return dict(
        gg.create_deployment(
            targetArn=_group_arn(group),
            deploymentName=group,
            components={component: {"componentVersion": "1.0.0"}},
            iotJobConfiguration=iot_job,
        )
    )


def _status(local_cloud: Any, deployment_id: str) -> str:
    return str(
        local_cloud.client("greengrassv2").get_deployment(deploymentId=deployment_id)["deploymentStatus"]
    )


def test_a_canary_stage_then_a_fleet_stage_aborted_at_the_tenth_executed_device(
    local_cloud, fleet: JobClientFleet, component: str
) -> None:  # type: ignore[no-untyped-def]
    canary, rest = fleet.names[:CANARY], fleet.names[CANARY:]
    canary_group = f"{fleet.thing_group}-canary"
    fleet.regroup(canary, canary_group)

    first = _deploy(
        local_cloud, canary_group, component, {"jobExecutionsRolloutConfig": {"maximumPerMinute": 100}}
    )
    outcomes = fleet.wait_finished(first["iotJobId"], CANARY, timeout_s=30)
    assert sorted(outcomes) == canary
    assert {o.status for o in outcomes.values()} == {"SUCCEEDED"}
    assert all(o.rejected is None for o in outcomes.values())

    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 10,
                "minNumberOfExecutedThings": 10,
            }
        ]
    }
    second = _deploy(
        local_cloud,
        str(fleet.thing_group),
        component,
        {"jobExecutionsRolloutConfig": {"maximumPerMinute": 10}, "abortConfig": abort},
    )
    job = second["iotJobId"]
    deadline = time.monotonic() + 30
    while _status(local_cloud, second["deploymentId"]) != "CANCELED":
        assert time.monotonic() < deadline, "the abortConfig never canceled the deployment"
        time.sleep(0.2)
    time.sleep(MINUTE_S + 1)  # a whole local minute more: nobody else is notified after the abort

    told = fleet.outcomes(job)
    assert sorted(told) == rest[:10]  # the first minute's things (name order), and no one else
    assert sorted(name for name, o in told.items() if o.status == "FAILED") == rest[:2]
    assert sorted(name for name, o in told.items() if o.status == "SUCCEEDED") == rest[2:10]
    assert not any(o.rejected for o in told.values())  # all 10 ended before the job was canceled
    assert not set(fleet.outcomes(first["iotJobId"])) & set(rest)  # the canary job stayed in its group


def test_registering_a_certificate_again_finds_the_first_registration(local_cloud, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What a retried RegisterCertificateWithoutCA meets (its first answer lost on a loaded machine)."""
    ca = CertificateAuthority(Path(local_cloud.mqtt.ca_path).parent)
    issued = ca.issue(f"jc-again-{uuid.uuid4().hex[:6]}", tmp_path / "again")
    iot = local_cloud.client("iot")
    first = register_certificate(iot, issued.cert_pem)
    assert first.startswith("arn:aws:iot:") and register_certificate(iot, issued.cert_pem) == first
