"""The condition keys the local cloud fills, and who fills each one.

A condition on a key that is not listed here cannot be evaluated as AWS would: AWS knows the key
and would fill it, we would read it as "absent" and flip the statement. So such a condition is
refused loudly (``UnsupportedConditionKey``) when its statement applies to a request, and a request
context carrying a key not listed here is a dispatcher bug (``UnknownContextKey``).

Keys are case-insensitive (IAM's rule); they are stored lower-cased. Keys that end in ``/`` are
families (``aws:ResourceTag/<tag key>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from local_cloud.iam.exceptions import UnknownContextKey

#: key (lower-case) -> where its value comes from. Families end with "/".
KNOWN_KEYS: Mapping[str, str] = {
    # Global keys, filled for every request by ``access.authorize`` / ``evaluate.request_for``.
    "aws:securetransport": "every request; AWS SDKs call over HTTPS, so the dispatcher passes true",
    "aws:principalarn": "every request: the role ARN of an assumed-role session",
    "aws:principalaccount": "every request: the caller's account",
    "aws:principaltype": "every request: AssumedRole, Account, User or a service",
    "aws:requestedregion": "every request: the region the call is signed for",
    "aws:currenttime": "every request: the evaluation time (ISO 8601)",
    "aws:epochtime": "every request: the evaluation time (epoch seconds)",
    "aws:viaawsservice": "dependent actions: true when a service acts with the caller's permissions",
    "aws:calledvia": "dependent actions: the service principal acting for the caller",
    "aws:calledviafirst": "dependent actions: as aws:CalledVia",
    "aws:calledvialast": "dependent actions: as aws:CalledVia",
    # Service-to-service calls (trust policies: a service assumes a role).
    "aws:sourcearn": "a service acting for a resource (states assuming the state machine's role)",
    "aws:sourceaccount": "a service acting for a resource: the resource's account",
    # Tags.
    "aws:resourcetag/": "the dispatcher, from the target resource's tags when the provider has them",
    "aws:requesttag/": "the request's Tags parameter (Create*/TagResource)",
    "aws:tagkeys": "the request's Tags parameter: the tag keys",
    # Service keys the templates use, filled from request parameters by ``access``.
    "iam:passedtoservice": "iam:PassRole checks: the service the role is passed to",
    "iam:associatedresourcearn": "iam:PassRole checks: the resource the role is passed for",
    "iam:policyarn": "iam:Attach*Policy: the PolicyArn parameter",
    "s3:prefix": "s3:ListBucket: the Prefix parameter (absent when not given)",
    "s3:delimiter": "s3:ListBucket: the Delimiter parameter",
    "s3:max-keys": "s3:ListBucket: the MaxKeys parameter",
    "s3:versionid": "s3 object operations: the VersionId parameter",
    "cloudwatch:namespace": "cloudwatch:PutMetricData: the Namespace parameter",
    "secretsmanager:secretid": "secretsmanager: the SecretId parameter",
    "secretsmanager:versionid": "secretsmanager: the VersionId parameter",
    "secretsmanager:versionstage": "secretsmanager: the VersionStage parameter",
}

_FAMILIES = tuple(k for k in KNOWN_KEYS if k.endswith("/"))


def is_known(key: str) -> bool:
    """The local cloud fills ``key`` (case-insensitive; tag families by prefix)."""
    k = key.lower()
    return k in KNOWN_KEYS or any(k.startswith(f) and len(k) > len(f) for f in _FAMILIES)


def normalize_context(context: Mapping[str, object] | None) -> dict[str, tuple[str, ...]]:
    """Lower-cased keys, values as tuples of strings (bools as ``true``/``false``); unknown keys
    raise ``UnknownContextKey``. ``None`` values mean "absent" and are dropped."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in (context or {}).items():
        if not is_known(key):
            raise UnknownContextKey(f"request context key {key!r} is not one the local cloud fills")
        if value is None:
            continue
        values: Iterable[object] = value if isinstance(value, list | tuple | set | frozenset) else (value,)
        out[key.lower()] = tuple(_text(v) for v in values)
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
