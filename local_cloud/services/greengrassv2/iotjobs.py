"""The IoT API's view of deployment jobs, and the IoT membership changes deployments follow.

A Greengrass deployment's IoT job lives in the greengrassv2 backend (one source of truth: moto's
IoT backend never hears of it). So ``iot:DescribeJob`` and ``iot:ListJobExecutionsForJob`` on a
deployment's job id are answered here, from the backend's records, in the IoT model's shapes
(the same rest-json machinery as the greengrassv2 API); any other job id falls through to moto,
which holds the jobs made with ``iot:CreateJob``. These requests pass the IAM authorizer before
they get here, like every call. Errors are the IoT API's: InvalidRequestException for a bad
parameter (ResourceNotFoundException for an unknown job comes from moto).

``observe`` sees the IoT calls moto served: a thing added to a thing group
(AddThingToThingGroup) gets the executions of the group's live continuous deployment and a
notify-next; a thing removed (RemoveThingFromThingGroup) loses its executions of the group's jobs
that had not started (REMOVED), so it gets nothing new from that group.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.iam.enforce.calls import credential_of
from local_cloud.services.greengrassv2 import jobrules
from local_cloud.services.greengrassv2.models import GreengrassBackend
from local_cloud.services.restjson import RestJsonService, ServiceError

LOG = logging.getLogger(__name__)

OPERATIONS = ("DescribeJob", "ListJobExecutionsForJob")
EXECUTION_STATUSES = (
    "QUEUED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "REJECTED",
    "REMOVED",
    "CANCELED",
)
_MEMBERSHIP = {
    "/thing-groups/addThingToThingGroup": "add",
    "/thing-groups/removeThingFromThingGroup": "remove",
}


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidRequestException", message)


def _name(body: dict[str, Any], name_key: str, arn_key: str) -> str:
    """A thing or group named directly or by its ARN (``...:thing/NAME``)."""
    return str(body.get(name_key) or str(body.get(arn_key) or "").rpartition("/")[2])


class IotJobsApi:
    """DescribeJob / ListJobExecutionsForJob for deployment jobs; group membership changes."""

    def __init__(self, backend: GreengrassBackend, notify: Callable[[Iterable[str]], None]) -> None:
        self.backend = backend
        self.notify = notify
        self._api: RestJsonService | None = None  # the IoT model is large: loaded on first use

    @property
    def api(self) -> RestJsonService:
        if self._api is None:
            self._api = RestJsonService("iot")
        return self._api

    @staticmethod
    def _is_iot(request: Request) -> bool:
        credential = credential_of(request.headers, request.query_string)
        return credential is not None and credential.service == "iot"

    def handle(self, request: Request) -> Response | None:
        """Serve the request when it is one of ``OPERATIONS`` on a deployment's job."""
        if request.method != "GET" or not request.path.startswith("/jobs/") or not self._is_iot(request):
            return None
        matched = self.api.match(request)
        if matched is None or matched[0].name not in OPERATIONS:
            return None
        op, labels = matched
        found = self.backend.job(labels.get("jobId", ""))
        if found is None:
            return None  # not a deployment's job: moto's
        try:
            params = self.api.parse(op, labels, request)
            if op.name == "DescribeJob":
                result = {"job": jobrules.describe_job(*found)}
            else:
                result = self._executions(found[1], params)
        except ServiceError as exc:
            return self.api.error(exc)
        return self.api.serialize(op, result)

    def _executions(self, executions: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        """ListJobExecutionsForJob: by thing name, optionally one status, paged."""
        status = params.get("status")
        if status is not None and status not in EXECUTION_STATUSES:
            raise _invalid(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
        size = params.get("maxResults", 100)
        if not 1 <= size <= 250:
            raise _invalid("maxResults must be between 1 and 250")
        token = params.get("nextToken") or "0"
        if not token.isdigit():
            raise _invalid("nextToken is not valid")
        chosen = [e for e in executions if status is None or e.status.value == status]
        start = int(token)
        page = chosen[start : start + size]
        arns = self.backend.arns
        answer: dict[str, Any] = {
            "executionSummaries": [jobrules.execution_summary(e, arns.thing(e.thing)) for e in page]
        }
        if start + size < len(chosen):
            answer["nextToken"] = str(start + size)
        return answer

    # -- IoT membership --------------------------------------------------------------------------
    def observe(self, request: Request, status: int) -> None:
        """After moto changed a thing's groups: follow it on a thread (it calls IoT back)."""
        change = _MEMBERSHIP.get(request.path)
        if status != 200 or change is None or request.method != "PUT" or not self._is_iot(request):
            return
        try:
            body = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            return
        thing = _name(body, "thingName", "thingArn")
        group = _name(body, "thingGroupName", "thingGroupArn")
        if thing and group:
            threading.Thread(target=self._follow, args=(change, thing, group), daemon=True).start()

    def _follow(self, change: str, thing: str, group: str) -> None:
        try:
            if change == "add":
                touched = self.backend.reconcile(thing)
            else:
                touched = self.backend.leave_group(thing, group)
            self.notify(touched)
        except Exception:
            LOG.exception("could not follow %s of %s to %s", change, thing, group)
