"""greengrassv2 errors; ``code`` is the botocore error shape name the client maps to a class.

``JobsError`` is the odd one out: the IoT Jobs MQTT protocol the deployments travel on.
"""

from __future__ import annotations

from typing import Any

from local_cloud.services.restjson import ServiceError


class ResourceNotFoundException(ServiceError):
    def __init__(self, message: str, resource_id: str = "", resource_type: str = "") -> None:
        super().__init__(
            "ResourceNotFoundException", message, resourceId=resource_id, resourceType=resource_type
        )


class ConflictException(ServiceError):
    def __init__(self, message: str, resource_id: str = "", resource_type: str = "") -> None:
        super().__init__("ConflictException", message, resourceId=resource_id, resourceType=resource_type)


class ValidationException(ServiceError):
    def __init__(
        self,
        message: str,
        reason: str = "FIELD_VALIDATION_FAILED",
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__("ValidationException", message, reason=reason, fields=fields or [])


class JobsError(Exception):
    """A refusal in the IoT Jobs device protocol (MQTT), answered on the request's ``/rejected`` topic.

    Not a ``ServiceError``: the jobs protocol has its own error codes (``InvalidRequest``,
    ``InvalidJson``, ``ResourceNotFound``, ``InvalidStateTransition``, ``VersionMismatch``) and,
    for the last two, carries the execution's current state so a device can resynchronise
    without another request.
    """

    def __init__(self, code: str, message: str, execution_state: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.execution_state = execution_state

    def to_payload(self, timestamp: int) -> dict[str, Any]:
        """The protocol's ErrorResponse (the transport adds ``clientToken``)."""
        payload: dict[str, Any] = {"code": self.code, "message": self.message, "timestamp": timestamp}
        if self.execution_state is not None:
            payload["executionState"] = self.execution_state
        return payload
