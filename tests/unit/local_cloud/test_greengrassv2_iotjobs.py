"""The IoT API's view of deployment jobs, on in-memory records: which requests are ours, the
IoT shapes and errors, and the group-membership changes that continuous deployments follow."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local_cloud.services.greengrassv2.arns import Target
from local_cloud.services.greengrassv2.iotjobs import IotJobsApi
from local_cloud.services.greengrassv2.models import ExecutionStatus, GreengrassBackend
from tests.unit.local_cloud.conftest import FakeDirectory, group_arn


def _request(method: str, path: str, service: str = "iot", body: Any = None, query: str = "") -> Request:
    auth = f"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"
    builder = EnvironBuilder(
        method=method,
        path=path,
        query_string=query,
        headers={"Authorization": auth},
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
    )
    return Request(builder.get_environ())


class Notified:
    def __init__(self) -> None:
        self.things: list[str] = []
        self.done = threading.Event()

    def __call__(self, things: Any) -> None:
        self.things += list(things)
        self.done.set()


@pytest.fixture
def deployed(backend: GreengrassBackend, directory: FakeDirectory) -> tuple[IotJobsApi, str, Notified]:
    for thing in ("a", "b", "c"):
        directory.add(thing, "fleet")
    config = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 2}}
    deployment, _ = backend.create_deployment(Target.parse(group_arn("fleet")), job_configuration=config)
    notified = Notified()
    return IotJobsApi(backend, notified), deployment.job_id, notified


def test_only_iot_requests_on_deployment_jobs_are_ours(deployed: tuple[IotJobsApi, str, Notified]) -> None:
    api, job_id, _ = deployed
    assert api.handle(_request("GET", "/jobs/someone-elses-job")) is None  # moto's
    assert api.handle(_request("GET", f"/jobs/{job_id}", service="batch")) is None
    assert api.handle(_request("DELETE", f"/jobs/{job_id}")) is None
    answer = api.handle(_request("GET", f"/jobs/{job_id}"))
    assert answer is not None and answer.status_code == 200
    job = json.loads(answer.get_data())["job"]
    assert job["jobId"] == job_id and job["status"] == "IN_PROGRESS"
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 3 and isinstance(job["createdAt"], float)


def test_list_job_executions_pages_filters_and_refuses_bad_parameters(
    deployed: tuple[IotJobsApi, str, Notified],
) -> None:
    api, job_id, _ = deployed
    first = api.handle(_request("GET", f"/jobs/{job_id}/things", query="maxResults=2"))
    page = json.loads(first.get_data())  # type: ignore[union-attr]
    assert [s["thingArn"].rpartition("/")[2] for s in page["executionSummaries"]] == ["a", "b"]
    rest = api.handle(_request("GET", f"/jobs/{job_id}/things", query=f"nextToken={page['nextToken']}"))
    assert [s["thingArn"][-1] for s in json.loads(rest.get_data())["executionSummaries"]] == ["c"]  # type: ignore[union-attr]
    none = api.handle(_request("GET", f"/jobs/{job_id}/things", query="status=SUCCEEDED"))
    assert json.loads(none.get_data()) == {"executionSummaries": []}  # type: ignore[union-attr]
    for query in ("status=DONE", "maxResults=251", "nextToken=zzz"):
        refused = api.handle(_request("GET", f"/jobs/{job_id}/things", query=query))
        assert refused is not None and refused.status_code == 400
        assert refused.headers["x-amzn-ErrorType"] == "InvalidRequestException"


def test_group_membership_changes_reach_the_deployment(
    deployed: tuple[IotJobsApi, str, Notified], backend: GreengrassBackend, directory: FakeDirectory
) -> None:
    api, job_id, notified = deployed
    directory.add("late", "fleet")
    api.observe(
        _request(
            "PUT", "/thing-groups/addThingToThingGroup", body={"thingName": "late", "thingGroupName": "fleet"}
        ),
        200,
    )
    assert notified.done.wait(5)
    assert backend.executions.find("late", job_id) is not None  # queued; the rollout releases it
    notified.done.clear()
    directory.groups["fleet"].discard("c")
    arns = {"thingArn": "arn:aws:iot:us-east-1:1:thing/c", "thingGroupArn": group_arn("fleet")}
    api.observe(_request("PUT", "/thing-groups/removeThingFromThingGroup", body=arns), 200)
    assert notified.done.wait(5) and notified.things[-1] == "c"
    assert backend.executions.find("c", job_id).status is ExecutionStatus.REMOVED  # type: ignore[union-attr]
    api.observe(
        _request("PUT", "/thing-groups/addThingToThingGroup", body={"thingName": "x"}), 400
    )  # moto refused: nothing
