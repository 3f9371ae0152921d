"""``decide(request, policies) -> Decision``: IAM's evaluation logic for one account.

The order is IAM's (same-account requests, no SCPs, boundaries or session policies):

1. a matching ``Deny`` in any policy → ``ExplicitlyDenied`` (Deny over Allow, always);
2. a matching ``Allow`` in an identity policy of the caller, or in a resource-based policy that
   names the caller itself (not just its account) → ``Allowed``;
3. otherwise → ``ImplicitlyDenied``.

A statement matches when its action, resource, principal (resource-based policies) and every
condition match. A request may name several resources (``iot:CreateJob`` on a job and a thing
group): each must be allowed, and an explicit deny on any of them wins. Every decision carries the
statements that made it, as ``policy#sid`` (or ``policy#index``), for the dispatcher's log.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from local_cloud.iam.keys import normalize_context
from local_cloud.iam.policy import Policy, PolicyKind, Statement
from local_cloud.iam.principals import Caller, Match


@dataclass(frozen=True)
class Request:
    """What is asked: who, which action (``service:Action``), on which resources, in which
    context (keys lower-cased, values as string tuples; build it with ``request_for``)."""

    caller: Caller
    action: str
    resources: tuple[str, ...]
    context: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class StatementRef:
    """Where a deciding statement lives."""

    policy: str
    kind: PolicyKind
    index: int
    sid: str = ""
    policy_arn: str = ""

    def __str__(self) -> str:
        return f"{self.policy}#{self.sid or self.index}"


@dataclass(frozen=True)
class Decision:
    """The outcome for one request; ``resource`` is the one the outcome is about (the denied
    one, or the first for ``Allowed``), ``statements`` the statements that decided."""

    resource: str
    statements: tuple[StatementRef, ...] = ()
    allowed: ClassVar[bool] = False

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Allowed(Decision):
    allowed: ClassVar[bool] = True


@dataclass(frozen=True)
class ImplicitlyDenied(Decision):
    """No statement allows; ``statements`` is empty."""


@dataclass(frozen=True)
class ExplicitlyDenied(Decision):
    """A ``Deny`` statement matched; ``statements`` lists them."""


def request_for(
    principal: str | Caller,
    action: str,
    resources: str | Sequence[str],
    context: Mapping[str, object] | None = None,
    *,
    region: str = "",
    now: float | None = None,
) -> Request:
    """A ``Request`` with IAM's global keys filled (principal ARN, account and type, requested
    region, current time) unless ``context`` sets them; ``context`` keys are checked against
    ``keys.KNOWN_KEYS``."""
    caller = principal if isinstance(principal, Caller) else Caller(principal)
    stamp = time.time() if now is None else now
    base: dict[str, object] = {
        "aws:PrincipalType": caller.principal_type,
        "aws:CurrentTime": datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(stamp)),
    }
    if not caller.is_service:
        base["aws:PrincipalArn"] = caller.principal_arn
        base["aws:PrincipalAccount"] = caller.account
    if region:
        base["aws:RequestedRegion"] = region
    merged = normalize_context(base)
    merged.update(normalize_context(context))
    listed = (resources,) if isinstance(resources, str) else tuple(resources)
    return Request(caller=caller, action=action, resources=listed or ("*",), context=merged)


def decide(request: Request, policies: Iterable[Policy]) -> Decision:
    """Evaluate ``request`` against every policy that applies (the caller's identity policies and
    the target's resource-based policies)."""
    policies = tuple(policies)
    first_implicit: ImplicitlyDenied | None = None
    allows: list[StatementRef] = []
    for resource in request.resources:
        denies, granted = _scan(request, resource, policies)
        if denies:
            return ExplicitlyDenied(resource, tuple(denies))
        if not granted and first_implicit is None:
            first_implicit = ImplicitlyDenied(resource)
        allows.extend(r for r in granted if r not in allows)
    if first_implicit is not None:
        return first_implicit
    return Allowed(request.resources[0], tuple(allows))


def _scan(
    request: Request, resource: str, policies: Sequence[Policy]
) -> tuple[list[StatementRef], list[StatementRef]]:
    """(matching Deny statements, Allow statements that grant) for one resource."""
    denies: list[StatementRef] = []
    grants: list[StatementRef] = []
    for policy in policies:
        if policy.kind is PolicyKind.IDENTITY and request.caller.is_service:
            continue  # a service principal has no identity policies
        for st in policy.statements:
            match = _principal_match(policy, st, request.caller)
            if match is Match.NONE:
                continue
            if not (st.matches_action(request.action) and st.matches_resource(resource)):
                continue
            if not st.condition.holds(request.context):
                continue
            ref = StatementRef(policy.name, policy.kind, st.index, st.sid, policy.arn)
            if st.effect == "Deny":
                denies.append(ref)
            elif match is Match.EXACT:
                grants.append(ref)
    return denies, grants


def _principal_match(policy: Policy, st: Statement, caller: Caller) -> Match:
    """EXACT for identity policies; for resource-based ones how the statement names the caller
    (an account-wide Allow grants nothing alone: the account's IAM policies must allow too)."""
    if policy.kind is PolicyKind.IDENTITY or st.principal is None:
        return Match.EXACT
    got = st.principal.match(caller)
    if st.not_principal:
        return Match.EXACT if got is Match.NONE else Match.NONE
    return got


def explain(request: Request, decision: Decision) -> str:
    """One log line: caller, action, resource, outcome and the deciding statements."""
    by = ", ".join(str(s) for s in decision.statements) or "no statement allows"
    return f"{request.caller.arn} {request.action} {decision.resource}: {decision.kind} ({by})"
