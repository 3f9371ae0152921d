"""Decision logging and answers: the decision log's records, a refusal's response, and the
server error sent when a call cannot be decided as AWS would."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from local_cloud.iam.authorize import Verdict
from local_cloud.iam.enforce.calls import ApiCall
from local_cloud.iam.enforce.modes import ModeHolder
from local_cloud.iam.enforce.store import RolePolicies
from local_cloud.iam.principals import Caller

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

LOG = logging.getLogger(__name__)


class Answering(ModeHolder):
    """The authorizer's log records and responses."""

    def _cannot_decide(
        self,
        caller: Caller,
        call: ApiCall | None,
        request: Request,
        request_id: str,
        exc: Exception,
        started: float,
    ) -> Response | None:
        cause = f"{type(exc).__name__}: {exc}"
        if self.log is not None:
            self.log.write(
                {
                    "type": "error",
                    "request_id": request_id,
                    "mode": self.mode.value,
                    **_who(caller),
                    "service": call.service if call else "",
                    "operation": call.operation if call else "",
                    "error": cause,
                    "refused": self.enforcing,
                    "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
        LOG.warning("IAM cannot decide %s %s for %s: %s", request.method, request.path, caller.arn, cause)
        if not self.enforcing:
            return None
        message = f"local cloud IAM cannot decide this request as AWS would: {cause}"
        return server_error(call.protocol if call else _guess_protocol(request), message, request_id)

    def _log_verdict(
        self,
        caller: Caller,
        call: ApiCall,
        verdict: Verdict,
        request_id: str,
        refused: bool,
        elapsed_ms: float,
    ) -> None:
        if self.log is None or not verdict.results:
            return
        base = {
            "type": "decision",
            "request_id": request_id,
            "mode": self.mode.value,
            **_who(caller),
            "service": call.service,
            "operation": call.operation,
            "elapsed_ms": round(elapsed_ms, 3),
        }
        for index, (check, decision) in enumerate(verdict.results):
            record: dict[str, Any] = {
                **base,
                "action": check.action,
                "resources": list(check.resources),
                "decision": decision.kind,
                "statements": [str(s) for s in decision.statements],
                "reason": check.reason,
                "refused": refused and not decision.allowed,
            }
            if not decision.allowed:
                record["message"] = verdict.message()
            if index == 0 and verdict.access.not_enforced:
                record["not_enforced"] = sorted(verdict.access.not_enforced)
            self.log.write(record)

    def _log_policies(self, role: RolePolicies) -> None:
        if self.log is not None and role.exists:
            self.log.write(
                {
                    "type": "policies",
                    "role": role.arn,
                    "policies": list(role.documents),
                    "unresolved": list(role.unresolved),
                }
            )

    @staticmethod
    def _response(error: Any) -> Response:
        from werkzeug.wrappers import Response

        return Response(error.body, status=error.status, headers=error.headers)


def _who(caller: Caller) -> dict[str, str]:
    return {"principal": caller.arn, "role": caller.role_arn, "session": caller.arn.rsplit("/", 1)[-1]}


def _guess_protocol(request: Request) -> str:
    if request.headers.get("X-Amz-Target"):
        return "json"
    if (request.content_type or "").startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-json"


def server_error(protocol: str, message: str, request_id: str) -> Response:
    """A 500 in the form the client's protocol parses, so botocore shows the message."""
    from werkzeug.wrappers import Response

    headers = {"x-amzn-RequestId": request_id}
    if protocol == "json":
        body = json.dumps({"__type": "InternalFailure", "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.0"
    elif protocol in ("rest-xml", "query"):
        code = "InternalError" if protocol == "rest-xml" else "InternalFailure"
        body = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{escape(message)}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            if protocol == "query"
            else f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        )
        headers["Content-Type"] = "text/xml"
    else:
        body = json.dumps({"message": message})
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": "InternalFailure"})
    return Response(body, status=500, headers=headers)
