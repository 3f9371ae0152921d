"""greengrassv2 errors; ``code`` is the botocore error shape name the client maps to a class."""

from __future__ import annotations

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
