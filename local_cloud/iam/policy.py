"""Policy documents: parsed once, checked as IAM checks them, matched many times.

``parse_policy`` accepts what IAM accepts (``Statement`` as a list or one object, ``Action`` or
``NotAction``, ``Resource`` or ``NotResource``, string or list values, a ``Condition`` block) and
refuses, with a message naming the statement, what IAM would refuse with
``MalformedPolicyDocument``: a missing ``Effect``, both ``Action`` and ``NotAction``, an action
without a service prefix, an unknown field or condition operator. Refusing here — when the
local cloud deploys a template — is the point: a policy AWS would reject must not run locally.

Identity policies ignore ``Principal``; resource-based policies (bucket policies, trust policies)
must name one, and may omit ``Resource`` (trust policies: the resource is the role itself).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from local_cloud.iam.conditions import Condition, parse_condition
from local_cloud.iam.exceptions import PolicyError
from local_cloud.iam.matching import action_matches, arn_matches, check_pattern, is_arn_pattern
from local_cloud.iam.principals import PrincipalSpec, parse_principal

VERSIONS = ("2012-10-17", "2008-10-17")
_FIELDS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
_PRINCIPAL_FIELDS = {"Principal", "NotPrincipal"}


class PolicyKind(enum.StrEnum):
    IDENTITY = "identity-based"
    RESOURCE = "resource-based"


@dataclass(frozen=True)
class Statement:
    """One statement; ``actions``/``resources`` hold the ``Not…`` lists when ``not_…`` is set."""

    index: int
    sid: str
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...]
    not_resources: bool
    condition: Condition = field(default_factory=Condition)
    principal: PrincipalSpec | None = None
    not_principal: bool = False

    def matches_action(self, action: str) -> bool:
        hit = any(action_matches(p, action) for p in self.actions)
        return not hit if self.not_actions else hit

    def matches_resource(self, resource: str) -> bool:
        hit = any(arn_matches(p, resource) for p in self.resources)
        return not hit if self.not_resources else hit


@dataclass(frozen=True)
class Policy:
    """A parsed policy: its name (for logs and refusal causes), kind, and statements."""

    name: str
    statements: tuple[Statement, ...]
    kind: PolicyKind = PolicyKind.IDENTITY
    arn: str = ""  # managed policies: quoted in an explicit-deny message, as AWS now does
    version: str = "2012-10-17"


def parse_policy(
    document: Mapping[str, object] | str,
    *,
    name: str,
    kind: PolicyKind = PolicyKind.IDENTITY,
    arn: str = "",
) -> Policy:
    """Parse and check a policy document (a JSON string or its parsed form)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"policy {name}: not JSON ({exc})") from exc
    if not isinstance(document, Mapping):
        raise PolicyError(f"policy {name}: the document must be a JSON object")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"policy {name}: unknown top-level fields {sorted(unknown)}")
    version = str(document.get("Version", "2008-10-17"))
    if version not in VERSIONS:
        raise PolicyError(f"policy {name}: Version {version!r} is not one of {VERSIONS}")
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise PolicyError(f"policy {name}: Statement must be an object or a non-empty list")
    statements = tuple(_statement(name, kind, i, s) for i, s in enumerate(items))
    sids = [s.sid for s in statements if s.sid]
    if kind is PolicyKind.IDENTITY and len(sids) != len(set(sids)):
        raise PolicyError(f"policy {name}: statement ids must be unique, got {sids}")
    return Policy(name=name, statements=statements, kind=kind, arn=arn, version=version)


def _statement(policy: str, kind: PolicyKind, index: int, raw: object) -> Statement:
    where = f"policy {policy}, statement {index}"
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: a statement must be an object")
    allowed = _FIELDS | _PRINCIPAL_FIELDS
    unknown = set(raw) - allowed
    if unknown:
        raise PolicyError(f"{where}: unknown fields {sorted(unknown)}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f'{where}: Effect must be "Allow" or "Deny", not {effect!r}')
    actions, not_actions = _one_of(where, raw, "Action", "NotAction", required=True)
    for action in actions:
        if action != "*" and ":" not in action:
            raise PolicyError(f"{where}: action {action!r} has no service prefix")
        check_pattern(action)
    required = kind is PolicyKind.IDENTITY
    resources, not_resources = _one_of(where, raw, "Resource", "NotResource", required=required)
    if not resources and not not_resources:
        resources = ("*",)  # trust policies: the resource is the role the policy belongs to
    for resource in resources:
        if resource != "*" and not is_arn_pattern(resource):
            raise PolicyError(f'{where}: resource {resource!r} is neither "*" nor an ARN of six parts')
        check_pattern(resource)
    principal, not_principal = _principal(where, kind, raw)
    try:
        condition = parse_condition(raw.get("Condition"))
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    return Statement(
        index=index,
        sid=str(raw.get("Sid") or ""),
        effect=str(effect),
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        condition=condition,
        principal=principal,
        not_principal=not_principal,
    )


def _one_of(
    where: str, raw: Mapping[str, object], name: str, negated: str, *, required: bool
) -> tuple[tuple[str, ...], bool]:
    if name in raw and negated in raw:
        raise PolicyError(f"{where}: has both {name} and {negated}")
    key = name if name in raw else negated if negated in raw else None
    if key is None:
        if required:
            raise PolicyError(f"{where}: needs {name} or {negated}")
        return (), False
    value = raw[key]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{where}: {key} must be a non-empty string or list of strings")
    return tuple(values), key == negated


def _principal(where: str, kind: PolicyKind, raw: Mapping[str, object]) -> tuple[PrincipalSpec | None, bool]:
    if kind is PolicyKind.IDENTITY:
        return None, False  # an identity policy's principal is the identity it is attached to
    if ("Principal" in raw) == ("NotPrincipal" in raw):
        raise PolicyError(f"{where}: a resource-based policy needs exactly one of Principal, NotPrincipal")
    key = "Principal" if "Principal" in raw else "NotPrincipal"
    try:
        return parse_principal(raw[key]), key == "NotPrincipal"
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from exc


def parse_policies(documents: Sequence[tuple[str, Mapping[str, object] | str]]) -> list[Policy]:
    """Identity policies by (name, document), as a role's inline policies come."""
    return [parse_policy(doc, name=name) for name, doc in documents]
