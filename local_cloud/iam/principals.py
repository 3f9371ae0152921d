"""Who calls (``Caller``) and whom a resource-based policy names (``PrincipalSpec``).

Identity policies have no ``Principal`` (it is the identity they are attached to). Resource-based
policies (bucket policies, role trust policies) name principals, and how a name matches decides
whether the statement can grant on its own:

- ``"*"`` / ``{"AWS": "*"}``, a role ARN, a session ARN, a user ARN, a service principal: the
  named caller (``Match.EXACT``): an Allow grants by itself, in the same account;
- an account (``"123456789012"``, ``arn:aws:iam::123456789012:root``): every principal of that
  account (``Match.ACCOUNT``): a Deny applies to them, an Allow only delegates to the account's
  IAM policies, which must grant too;
- ``Federated`` and ``CanonicalUser`` principals never match a caller of the local cloud.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from local_cloud.iam.exceptions import PolicyError


class Match(enum.Enum):
    NONE = 0
    ACCOUNT = 1
    EXACT = 2


@dataclass(frozen=True)
class Caller:
    """The principal making a request: an ARN, or a service principal such as
    ``states.amazonaws.com`` (a service assuming a role)."""

    arn: str
    role_arn: str = ""  # for an assumed-role session: the role's ARN, path included

    @property
    def is_service(self) -> bool:
        return not self.arn.startswith("arn:")

    @property
    def account(self) -> str:
        parts = self.arn.split(":", 5)
        return parts[4] if len(parts) == 6 else ""

    @property
    def principal_arn(self) -> str:
        """``aws:PrincipalArn``: the role for a session (path unknown unless ``role_arn`` is
        given), otherwise the caller's own ARN."""
        if self.role_arn or not self.role_name:
            return self.role_arn or self.arn
        partition = self.arn.split(":")[1]
        return f"arn:{partition}:iam::{self.account}:role/{self.role_name}"

    @property
    def principal_type(self) -> str:
        """``aws:PrincipalType``."""
        resource = self.arn.split(":", 5)[-1]
        if self.is_service:
            return "Service"
        if resource.startswith("assumed-role/"):
            return "AssumedRole"
        if resource == "root":
            return "Account"
        return "User"

    @property
    def role_name(self) -> str:
        """The role of an assumed-role session (``assumed-role/NAME/session``), else empty."""
        resource = self.arn.split(":", 5)[-1]
        if resource.startswith("assumed-role/"):
            return resource.split("/")[1]
        return ""


@dataclass(frozen=True)
class PrincipalSpec:
    """A statement's ``Principal`` (or ``NotPrincipal``) element."""

    anyone: bool = False
    aws: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def match(self, caller: Caller) -> Match:
        """How this element names ``caller`` (see the module docstring)."""
        if self.anyone:
            return Match.EXACT
        if caller.is_service:
            return Match.EXACT if caller.arn in self.services else Match.NONE
        best = Match.NONE
        for name in self.aws:
            got = _aws_match(name, caller)
            if got.value > best.value:
                best = got
        return best


def _aws_match(name: str, caller: Caller) -> Match:
    if name == "*":
        return Match.EXACT
    if name.isdigit():
        return Match.ACCOUNT if name == caller.account else Match.NONE
    parts = name.split(":", 5)
    if len(parts) != 6:
        return Match.NONE
    account, resource = parts[4], parts[5]
    if account != caller.account:
        return Match.NONE
    if resource == "root":
        return Match.ACCOUNT
    if name in (caller.arn, caller.role_arn):
        return Match.EXACT
    if (
        resource.startswith("role/")
        and resource.rsplit("/", 1)[-1] == caller.role_name
        and not caller.role_arn
    ):
        return Match.EXACT  # role ARN with a path, caller given without its role ARN
    return Match.NONE


def parse_principal(value: object) -> PrincipalSpec:
    """``Principal`` / ``NotPrincipal`` as written; ``PolicyError`` for shapes IAM refuses."""
    if value == "*":
        return PrincipalSpec(anyone=True)
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f'Principal must be "*" or an object, not {value!r}')
    aws: list[str] = []
    services: list[str] = []
    for kind, names in value.items():
        listed = names if isinstance(names, list) else [names]
        if not all(isinstance(n, str) for n in listed):
            raise PolicyError(f"Principal {kind}: names must be strings")
        if kind == "AWS":
            if any("*" in n and n != "*" for n in listed):
                raise PolicyError(f'Principal AWS {listed}: wildcards are allowed only as "*" alone')
            aws.extend(listed)
        elif kind == "Service":
            services.extend(listed)
        elif kind not in ("Federated", "CanonicalUser"):
            raise PolicyError(f"unknown principal type {kind!r}")
    return PrincipalSpec(anyone=False, aws=tuple(aws), services=tuple(services))
