"""Greengrass IPC: eventstream-RPC server, authentication/authorization, one module per family."""

from .auth import Authorizer, TokenRegistry
from .exceptions import (
    InvalidArgumentsError,
    IpcError,
    ResourceNotFoundError,
    ServiceError,
    UnauthorizedError,
)
from .pubsub import LocalPubSub
from .server import IpcServer, Stream

__all__ = [
    "Authorizer",
    "InvalidArgumentsError",
    "IpcError",
    "IpcServer",
    "LocalPubSub",
    "ResourceNotFoundError",
    "ServiceError",
    "Stream",
    "TokenRegistry",
    "UnauthorizedError",
]
