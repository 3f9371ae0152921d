"""A refusal as AWS words and serializes it, so it reaches an execution's cause unchanged.

Message (IAM's current format; S3 quotes the resource):

    User: arn:aws:sts::123456789012:assumed-role/Role/session is not authorized to perform:
    greengrass:ListEffectiveDeployments on resource: arn:…:coreDevices:thing-1
    because no identity-based policy allows the greengrass:ListEffectiveDeployments action

with ``with an explicit deny in an identity-based policy`` (``: <policy ARN>`` for a managed
policy, as AWS added in 2026) or ``… in a resource-based policy`` for explicit denies.

Error code by wire protocol (botocore's ``metadata.protocol``): ``AccessDenied`` for the XML
protocols (``query``: IAM, STS; ``rest-xml``: S3), ``AccessDeniedException`` for the JSON ones
(``json``: Step Functions, SageMaker, Secrets Manager, Logs; ``rest-json``: Lambda — Invoke
included —, Greengrass V2, IoT). HTTP status: 403, except 400 for ``json`` services (their
common-errors tables list AccessDeniedException as 400). A HEAD request gets the status alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import escape

from local_cloud.iam.evaluate import Decision, ExplicitlyDenied
from local_cloud.iam.exceptions import UnsupportedProtocol
from local_cloud.iam.policy import PolicyKind

ERROR_CODES = {
    "query": "AccessDenied",
    "rest-xml": "AccessDenied",
    "json": "AccessDeniedException",
    "rest-json": "AccessDeniedException",
}


def access_denied_message(principal: str, action: str, decision: Decision, *, service: str = "") -> str:
    """AWS's text for a refused ``action`` (the decision names the resource and the cause)."""
    resource = f'"{decision.resource}"' if service == "s3" else decision.resource
    head = f"User: {principal} is not authorized to perform: {action} on resource: {resource}"
    if isinstance(decision, ExplicitlyDenied):
        first = decision.statements[0] if decision.statements else None
        kind = first.kind if first else PolicyKind.IDENTITY
        article = "an" if kind is PolicyKind.IDENTITY else "a"
        tail = f": {first.policy_arn}" if first and first.policy_arn else ""
        return f"{head} with an explicit deny in {article} {kind.value} policy{tail}"
    return f"{head} because no identity-based policy allows the {action} action"


@dataclass(frozen=True)
class ErrorResponse:
    """What the dispatcher sends back instead of calling the provider."""

    status: int
    headers: dict[str, str]
    body: bytes


@lru_cache(maxsize=64)
def _metadata(service: str) -> tuple[str, str, str]:
    """(protocol, JSON version, XML namespace) from botocore's service model."""
    import botocore.session

    meta = botocore.session.get_session().get_service_model(service).metadata
    return (
        str(meta.get("protocol", "")),
        str(meta.get("jsonVersion", "1.0")),
        str(meta.get("xmlNamespace", "")),
    )


def error_code(service: str) -> str:
    """``AccessDenied`` or ``AccessDeniedException`` for a botocore service name."""
    protocol = _metadata(service)[0]
    if protocol not in ERROR_CODES:
        raise UnsupportedProtocol(f"{service}: protocol {protocol!r}")
    return ERROR_CODES[protocol]


def render_access_denied(
    service: str, message: str, *, request_id: str, protocol: str | None = None, method: str = "POST"
) -> ErrorResponse:
    """The HTTP response AWS sends for a refusal, for botocore's ``service`` (its protocol from
    the service model unless ``protocol`` says which one the client spoke)."""
    proto, json_version, namespace = _metadata(service)
    proto = protocol or proto
    if proto not in ERROR_CODES:
        raise UnsupportedProtocol(f"{service}: cannot render an error for protocol {proto!r}")
    code = ERROR_CODES[proto]
    headers = {"x-amzn-RequestId": request_id}
    if proto == "json":
        headers["Content-Type"] = f"application/x-amz-json-{json_version}"
        body = json.dumps({"__type": code, "message": message}).encode()
        status = 400
    elif proto == "rest-json":
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": code})
        body = json.dumps({"message": message}).encode()
        status = 403
    elif proto == "rest-xml":
        headers.update({"Content-Type": "application/xml", "x-amz-request-id": request_id})
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        status = 403
    else:  # query
        headers["Content-Type"] = "text/xml"
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        status = 403
    if method.upper() == "HEAD":
        body = b""
    return ErrorResponse(status, headers, body)
