"""Errors the CloudFormation provider answers with, by the AWS error code of each."""

from __future__ import annotations


class CloudFormationError(Exception):
    code = "ValidationError"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CloudFormationError):
    code = "ValidationError"


class InsufficientCapabilities(CloudFormationError):
    code = "InsufficientCapabilitiesException"


class AlreadyExists(CloudFormationError):
    code = "AlreadyExistsException"


class UnsupportedResourceTypes(ValidationError):
    """The template has resource types the local cloud cannot create; the message lists them."""

    def __init__(self, refused: dict[str, list[str]]) -> None:
        self.refused = refused
        listed = "; ".join(f"{kind} ({', '.join(ids)})" for kind, ids in sorted(refused.items()))
        super().__init__(
            f"Template format error: the local cloud cannot create {len(refused)} resource type(s) "
            f"of this template: {listed}. Nothing was created."
        )
