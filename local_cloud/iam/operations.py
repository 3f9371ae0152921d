"""From an API call (botocore service + operation + parameters) to the IAM checks it needs.

``required_access`` answers, for one call: the operation's IAM action and its resources, the
context keys its parameters carry (``s3:prefix``, tags…), and the dependent or implied actions
enforced for it (``dependencies``), each as a ``Check`` that ``evaluate.decide`` can run; plus the
dependent actions deliberately not enforced, with the reason, for the run report.

IAM action names mostly equal botocore operation names under the service's IAM prefix; the
exceptions are in ``OPERATION_ACTIONS`` (S3's ``ListObjectsV2`` is ``s3:ListBucket``; Lambda's
``Invoke`` is ``lambda:InvokeFunction``; ``sts:GetCallerIdentity`` needs no permission).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from local_cloud.iam.dataset import ActionInfo, dataset
from local_cloud.iam.dependencies import DEPENDENT, IMPLIED, Dependency
from local_cloud.iam.exceptions import MissingResourceFact, UnknownOperation
from local_cloud.iam.resources import Where, resources_for

#: botocore service name -> IAM prefix, where they differ.
IAM_PREFIX: Mapping[str, str] = {
    "stepfunctions": "states",
    "greengrassv2": "greengrass",
    "iot-data": "iot",
    "iot-jobs-data": "iotjobsdata",
    "sagemaker-runtime": "sagemaker",
}

#: (botocore service, operation) -> IAM action name, where it differs; None: no permission needed.
OPERATION_ACTIONS: Mapping[tuple[str, str], str | None] = {
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "CopyObject"): "PutObject",
    ("s3", "UploadPartCopy"): "PutObject",
    ("s3", "ListParts"): "ListMultipartUploadParts",
    ("s3", "DeleteObjects"): "DeleteObject",
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("sts", "GetCallerIdentity"): None,  # "No permissions are required to perform this operation"
}

#: S3 object operations that become their ``…Version`` action when ``VersionId`` is given.
_VERSIONED = {"GetObject": "GetObjectVersion", "DeleteObject": "DeleteObjectVersion"}
#: Greengrass operations that are the same API in V1 and V2 (one dataset entry serves both).
_GREENGRASS_SHARED = frozenset(
    {
        "AssociateServiceRoleToAccount",
        "DisassociateServiceRoleFromAccount",
        "GetServiceRoleForAccount",
        "GetConnectivityInfo",
        "UpdateConnectivityInfo",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
    }
)


def iam_prefix(service: str) -> str:
    return IAM_PREFIX.get(service, service)


def iam_action(service: str, operation: str, params: Mapping[str, object] | None = None) -> str | None:
    """``prefix:Action`` for a botocore operation, as the dataset spells it; None when AWS
    requires no permission. ``UnknownOperation`` when the dataset has no such action."""
    key = (service, operation)
    name = OPERATION_ACTIONS.get(key, operation)
    if name is None:
        return None
    if service == "s3" and params and params.get("VersionId") and name in _VERSIONED:
        name = _VERSIONED[name]
    info = dataset().action(f"{iam_prefix(service)}:{name}")
    _check_greengrass_api(service, operation, info)
    return info.action


def _check_greengrass_api(service: str, operation: str, info: ActionInfo) -> None:
    """The dataset's ``greengrass`` prefix mixes V1 and V2: a V2 call must meet a V2 entry and a
    V1 call a V1 one (where both APIs have the operation only the V2 entry exists)."""
    if info.prefix != "greengrass" or operation in _GREENGRASS_SHARED:
        return
    if service == "greengrassv2" and not info.greengrass_v2:
        raise UnknownOperation(
            f"greengrassv2 {operation}: the dataset entry is Greengrass V1's ({info.api_link})"
        )
    if service == "greengrass" and info.greengrass_v2:
        raise UnknownOperation(f"greengrass (V1) {operation}: the dataset holds only the V2 entry")


@dataclass(frozen=True)
class Check:
    """One authorization to ask ``evaluate.decide``: action, resources, context, and why."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, object] = field(default_factory=dict)
    reason: str = "operation"


@dataclass(frozen=True)
class Access:
    """Everything one API call needs, in the order AWS would check it."""

    service: str
    operation: str
    action: str | None  # None: no permission needed
    checks: tuple[Check, ...]
    #: dependent actions the dataset lists but the local cloud does not enforce, with the reason
    not_enforced: Mapping[str, str] = field(default_factory=dict)


def required_access(
    service: str,
    operation: str,
    params: Mapping[str, object],
    *,
    account: str,
    region: str,
    facts: Mapping[str, object] | None = None,
    partition: str = "aws",
) -> Access:
    """The checks for one call (see the module docstring). ``facts`` carries what only the
    provider knows (``dependencies.FACTS``)."""
    action = iam_action(service, operation, params)
    if action is None:
        return Access(service, operation, None, ())
    info = dataset().action(action)
    where = Where(params=params, account=account, region=region, partition=partition, facts=facts)
    checks = [Check(action, resources_for(info, where), request_context(service, operation, params))]
    if (service, operation) in (("s3", "CopyObject"), ("s3", "UploadPartCopy")):
        checks.append(Check("s3:GetObject", (_copy_source(params, partition),), reason="copy source"))
    entry = DEPENDENT.get(info.action)
    for dep in (*(entry.enforced if entry else ()), *IMPLIED.get(info.action, ())):
        if _applies(dep, where):
            resources = expand(dep.resources, where)
            if resources:
                checks.append(
                    Check(
                        dep.action,
                        resources,
                        _dependency_context(dep),
                        f"{dep.action} for {action}: {dep.why}",
                    )
                )
    not_enforced = (
        dict(entry.not_enforced)
        if entry
        else {a: "no entry in dependencies.DEPENDENT" for a in info.dependent_actions}
    )
    return Access(service, operation, action, tuple(checks), not_enforced)


def own_access(
    service: str,
    operation: str,
    params: Mapping[str, object],
    *,
    account: str,
    region: str,
    facts: Mapping[str, object] | None = None,
    partition: str = "aws",
) -> Access:
    """The operation's own action on its own resources, without dependent or implied actions
    (``not_enforced`` lists those the dataset names, with why)."""
    action = iam_action(service, operation, params)
    if action is None:
        return Access(service, operation, None, ())
    info = dataset().action(action)
    where = Where(params=params, account=account, region=region, partition=partition, facts=facts)
    check = Check(action, resources_for(info, where), request_context(service, operation, params))
    skipped = "the target does not exist: the call ends before any dependent action is used"
    return Access(service, operation, action, (check,), {a: skipped for a in info.dependent_actions})


def _applies(dep: Dependency, where: Where) -> bool:
    if not dep.when:
        return True
    kind, _, name = dep.when.partition(":")
    if kind == "target":
        target = str(where.value("targetArn") or "")
        if not target:
            raise MissingResourceFact(f"{dep.action}: targetArn (parameter or fact) is needed")
        return f":{name}/" in target
    source = (where.facts or {}) if kind == "fact" else where.params
    return bool(next((v for k, v in source.items() if k.lower() == name.lower()), None))


def _dependency_context(dep: Dependency) -> dict[str, object]:
    ctx: dict[str, object] = dict(dep.context)
    if dep.via:
        ctx.update({"aws:ViaAWSService": True, "aws:CalledVia": dep.via})
        ctx.update({"aws:CalledViaFirst": dep.via, "aws:CalledViaLast": dep.via})
    return ctx


def expand(templates: tuple[str, ...], where: Where) -> tuple[str, ...]:
    """Fill ``{name}``, ``{lower:name}``, ``{new:name}`` templates (see ``dependencies``)."""
    out: list[str] = []
    for template in templates:
        names = [part.split("}", 1)[0] for part in template.split("{")[1:]]
        choices = [_values(n, where) for n in names]
        for combo in itertools.product(*choices):
            text = template
            for name, value in zip(names, combo, strict=True):
                text = text.replace("{" + name + "}", value, 1)
            if text not in out:
                out.append(text)
    return tuple(out)


def _values(name: str, where: Where) -> list[str]:
    fixed = {"partition": where.partition, "region": where.region, "account": where.account}
    if name in fixed:
        return [fixed[name]]
    mode, _, key = name.rpartition(":")
    value = where.value(key)
    if value is None and mode == "new":
        return [str(uuid.uuid4())]
    if value is None:
        raise MissingResourceFact(
            f"{key!r} (parameter or fact) is needed to name a dependent action's resource"
        )
    values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return [v.lower() for v in values] if mode == "lower" else values


def request_context(service: str, operation: str, params: Mapping[str, object]) -> dict[str, object]:
    """Condition keys the request's parameters carry (``keys.KNOWN_KEYS``)."""
    ctx: dict[str, object] = {}
    if service == "s3":
        ctx.update({"s3:prefix": params.get("Prefix"), "s3:delimiter": params.get("Delimiter")})
        ctx.update({"s3:max-keys": params.get("MaxKeys"), "s3:versionid": params.get("VersionId")})
    elif service == "cloudwatch":
        ctx["cloudwatch:namespace"] = params.get("Namespace")
    elif service == "iam":
        ctx["iam:PolicyARN"] = params.get("PolicyArn")
    elif service == "secretsmanager":
        ctx.update(
            {
                "secretsmanager:SecretId": params.get("SecretId"),
                "secretsmanager:VersionId": params.get("VersionId"),
            }
        )
        ctx["secretsmanager:VersionStage"] = params.get("VersionStage")
    tags = _tags(params)
    if tags is not None:
        ctx["aws:TagKeys"] = list(tags)
        ctx.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
    return {k: v for k, v in ctx.items() if v is not None}


def _tags(params: Mapping[str, object]) -> dict[str, str] | None:
    """Request tags in any of the shapes AWS APIs use: ``[{"Key","Value"}]``, ``{k: v}``, or
    S3's ``Tagging`` query string."""
    raw = params.get("Tags", params.get("tags"))
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {str(t.get("Key", t.get("key"))): str(t.get("Value", t.get("value", ""))) for t in raw}
    tagging = params.get("Tagging")
    if isinstance(tagging, str) and tagging:
        pairs = (p.partition("=") for p in tagging.split("&"))
        return {unquote(k): unquote(v) for k, _, v in pairs}
    return None


def _copy_source(params: Mapping[str, object], partition: str) -> str:
    source = params.get("CopySource")
    if isinstance(source, Mapping):
        return f"arn:{partition}:s3:::{source['Bucket']}/{source['Key']}"
    text = unquote(str(source or "")).lstrip("/").split("?", 1)[0]
    if "/" not in text:
        raise MissingResourceFact(f"CopySource {source!r} is not bucket/key")
    return f"arn:{partition}:s3:::{text}"


def resource_arns(
    service: str,
    operation: str,
    params: Mapping[str, object],
    account: str,
    region: str,
    *,
    facts: Mapping[str, object] | None = None,
    partition: str = "aws",
) -> tuple[str, ...]:
    """Resource ARNs the operation's IAM action is authorized on (``("*",)`` for actions
    without resource-level permissions). ``service`` is botocore's name (``greengrassv2``)."""
    action = iam_action(service, operation, params)
    if action is None:
        return ()
    where = Where(params=params, account=account, region=region, partition=partition, facts=facts)
    return resources_for(dataset().action(action), where)
