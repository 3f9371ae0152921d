"""Which requests may change kept state, and which service's state: SigV4 scope and operation name."""

from __future__ import annotations

import re
from typing import Any

#: SigV4 signing name (the credential scope's service) -> the state it may change.
SIGNING_NAMES: dict[str, str] = {
    "s3": "s3",
    "iam": "iam",
    "sts": "sts",
    "iot": "iot",
    "lambda": "lambda",
    "logs": "logs",
    "sagemaker": "sagemaker",
    "states": "stepfunctions",
    "secretsmanager": "secretsmanager",
    "ssm": "ssm",
    "events": "events",
    "ecr": "ecr",
    "cloudformation": "cloudformation",
    # greengrass (control and IoT Jobs data plane): the provider writes its file on every change
}

#: Operation-name prefixes that only read (all services' read operations start with one of them).
_READ_PREFIXES = (
    "Get", "List", "Describe", "Head", "Search", "Query", "Scan", "BatchGet", "Lookup", "Select",
    "Validate", "Estimate", "Check", "Test", "Simulate", "Preview", "Filter", "Retrieve",
)  # fmt: skip
#: Read operations that start with none of the prefixes above but change nothing that is kept.
_READ_OPERATIONS = {
    "Invoke",
    "InvokeAsync",
    "GenerateCredentialReport",
    "AssumeRole",
    "DecodeAuthorizationMessage",
}
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_REST_READS = re.compile(r"^/[0-9-]+/functions/[^/]+/invocations$|^/[0-9-]+/functions/[^/]+/invoke-async/?$")


def signing_service(request: Any) -> str:
    """The credential scope's service of a SigV4 request (header or presigned query), or ''."""
    auth = request.headers.get("Authorization", "")
    credential = ""
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = request.args.get("X-Amz-Credential", "")
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else ""


def operation_name(request: Any) -> str:
    """The operation of a JSON (``X-Amz-Target``) or query (``Action``) protocol request, or ''."""
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    action = request.args.get("Action", "")
    if action:
        return str(action)
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return str(request.form.get("Action", ""))
    return ""


def is_mutating(request: Any) -> bool:
    """Whether a request may change state: not a GET/HEAD, and not a read operation by name.

    REST protocols (S3, Lambda, Greengrass, IoT) read with GET/HEAD and write with PUT/POST/
    PATCH/DELETE; JSON and query protocols always POST, so their operation name decides. A write
    misjudged as a read would be lost at a crash, a read misjudged as a write only costs a
    snapshot, so anything unrecognised counts as a write.
    """
    if request.method in _READ_METHODS:
        return False
    operation = operation_name(request)
    if not operation:
        # REST write, except Lambda's Invoke (POST .../functions/<name>/invocations), which changes
        # no kept state (its log events are CloudWatch Logs writes of their own)
        return not _REST_READS.search(request.path)
    if operation in _READ_OPERATIONS:
        return False
    return not operation.startswith(_READ_PREFIXES)
