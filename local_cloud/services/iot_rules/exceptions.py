"""IoT errors the rules provider answers itself, in the IoT API's error shapes."""

from __future__ import annotations

from local_cloud.services.restjson import ServiceError


class SqlParseException(ServiceError):
    """AWS's answer to a rule whose SQL it cannot parse (400, ``SqlParseException``)."""

    def __init__(self, message: str) -> None:
        super().__init__("SqlParseException", message)


class InvalidRequestException(ServiceError):
    """AWS's answer to a malformed rule payload (400, ``InvalidRequestException``)."""

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestException", message)
