"""IPC errors, named after the Greengrass IPC error shapes the client maps them to."""

from __future__ import annotations


class IpcError(Exception):
    """An error the client receives as an APPLICATION_ERROR of shape ``aws.greengrass#<name>``."""

    shape = "ServiceError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnauthorizedError(IpcError):
    """The calling component's accessControl does not grant this operation on this resource."""

    shape = "UnauthorizedError"


class InvalidArgumentsError(IpcError):
    """The request is missing or has wrong fields."""

    shape = "InvalidArgumentsError"


class ResourceNotFoundError(IpcError):
    """The named component or configuration key does not exist."""

    shape = "ResourceNotFoundError"


class ServiceError(IpcError):
    """The core failed to carry out a valid request."""

    shape = "ServiceError"
