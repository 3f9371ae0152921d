"""Resource ARNs of a request, filled from its parameters with the dataset's ARN formats.

For an IAM action the dataset lists resource types and their ARN formats
(``arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}``). A request's resources are
found in this order:

1. a per-action mapping (``OVERRIDES``) where the parameters do not line up with the format: a
   component name inside a recipe, Lambda's ``FunctionName``/``Qualifier`` forms, a versioned
   SageMaker model package, a secret named without its ARN suffix;
2. an ARN-valued parameter that fits the format (``arn``, ``stateMachineArn``, ``RoleArn``,
   ``ModelPackageName`` given as an ARN…) — the format itself says it is the right resource;
3. the format filled from parameters whose names match its placeholders case-insensitively
   (``${ThingName}`` ← ``thingName``), with a few aliases (``${BucketName}`` ← ``Bucket``) and
   the caller-supplied ``facts`` (state only the provider knows: a deployment's job id).

An action without resource types (or whose optional types cannot be filled) is authorized on
``*``, as in AWS's reference. When none of an action's required types can be filled,
``MissingResourceFact`` is raised: guessing would make a scoped policy look wrong or right by
accident. (The reference flags alternatives as required too, so one filled type suffices.)
SageMaker puts names into ARNs lower-cased; the fill does the same.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import yaml

from local_cloud.iam.dataset import ActionInfo, ResourceType
from local_cloud.iam.exceptions import MissingResourceFact
from local_cloud.iam.matching import arn_matches

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
#: format placeholder (lower-case) -> request parameter names that carry it, where names differ.
ALIASES: Mapping[str, tuple[str, ...]] = {
    "bucketname": ("Bucket",),
    "objectname": ("Key",),
    "topicname": ("topic",),
    "rolenamewithpath": ("RoleName",),
}
#: prefixes whose ARNs carry names lower-cased.
LOWERCASE_NAMES = frozenset({"sagemaker"})


@dataclass(frozen=True)
class Where:
    """Everything a fill may use."""

    params: Mapping[str, object]
    account: str
    region: str
    partition: str = "aws"
    facts: Mapping[str, object] | None = None

    def value(self, name: str) -> object | None:
        """A parameter or fact by placeholder name (case-insensitive, aliases included)."""
        wanted = {name.lower(), *(a.lower() for a in ALIASES.get(name.lower(), ()))}
        for source in (self.facts or {}, self.params):
            for key, value in source.items():
                if key.lower() in wanted and value not in (None, ""):
                    return value
        return None


def fill(arn_format: str, where: Where, *, lower: bool = False) -> str | None:
    """``arn_format`` with every placeholder filled, or None when one has no value."""
    fixed = {"partition": where.partition, "region": where.region, "account": where.account}
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1)
        if name.lower() in fixed:
            return fixed[name.lower()]
        value = where.value(name)
        if not isinstance(value, str | int):
            missing = True
            return ""
        text = str(value)
        return text.lower() if lower else text

    out = _PLACEHOLDER.sub(sub, arn_format)
    return None if missing else out


def fits(arn: str, arn_format: str) -> bool:
    """``arn`` has the shape of ``arn_format`` (placeholders as wildcards)."""
    return arn_matches(_PLACEHOLDER.sub("*", arn_format), arn)


def _from_type(info: ActionInfo, rt: ResourceType, where: Where) -> str | None:
    for value in where.params.values():
        if isinstance(value, str) and value.startswith("arn:") and fits(value, rt.arn_format):
            return value
    return fill(rt.arn_format, where, lower=info.prefix in LOWERCASE_NAMES)


def resources_for(info: ActionInfo, where: Where) -> tuple[str, ...]:
    """The resources ``info``'s action is authorized on for this request (see module doc)."""
    override = OVERRIDES.get(info.action.lower())
    if override is not None:
        return override(where)
    found: list[str] = []
    for rt in info.scoped_types:
        arn = _from_type(info, rt, where)
        if arn is not None and arn not in found:
            found.append(arn)
    if found:
        return tuple(found)
    required = [rt for rt in info.scoped_types if rt.required]
    if required:
        # The reference marks alternatives as "required" too (a Step Functions execution is
        # standard or express; iot:CreateJob targets a thing or a group): one must be named.
        raise MissingResourceFact(
            f"{info.action}: cannot build a {' or '.join(rt.name for rt in required)} ARN "
            f"({required[0].arn_format}) from the request; parameters {sorted(where.params)}, "
            f"facts {sorted(where.facts or {})}"
        )
    if any(not rt.name for rt in info.resource_types) or not info.resource_types:
        return ("*",)
    raise MissingResourceFact(f"{info.action}: none of its resource types can be built from the request")


# --- per-action mapping: where parameters and ARN formats do not line up ----------------------


def _arn(where: Where, service: str, resource: str) -> str:
    return f"arn:{where.partition}:{service}:{where.region}:{where.account}:{resource}"


def _recipe_name(data: bytes) -> str | None:
    """``ComponentName`` of a recipe given as JSON or YAML bytes (None if it is neither)."""
    try:
        recipe = yaml.safe_load(data)  # YAML is a superset of JSON
    except yaml.YAMLError:
        return None
    name = recipe.get("ComponentName") if isinstance(recipe, dict) else None
    return str(name) if name else None


def _recipe_component(where: Where) -> tuple[str, ...]:
    """CreateComponentVersion: the component is named inside the recipe (bytes as botocore
    parses the blob, or its base64 text as sent), or by ``lambdaFunction.componentName``."""
    raw = where.params.get("inlineRecipe")
    name = None
    if raw is not None:
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        name = _recipe_name(data)
        if name is None:
            try:
                name = _recipe_name(base64.b64decode(data, validate=True))
            except (binascii.Error, ValueError):
                name = None
    else:
        lam = where.params.get("lambdaFunction")
        name = lam.get("componentName") if isinstance(lam, Mapping) else None
    if not name:
        raise MissingResourceFact("CreateComponentVersion: no ComponentName in the recipe or lambdaFunction")
    return (_arn(where, "greengrass", f"components:{name}"),)


def _candidates(where: Where) -> tuple[str, ...]:
    """ResolveComponentCandidates: one componentVersion ARN per candidate."""
    out = []
    for c in where.params.get("componentCandidates") or []:
        out.append(
            _arn(where, "greengrass", f"components:{c['componentName']}:versions:{c['componentVersion']}")
        )
    return tuple(out) or ("*",)


def _function(where: Where) -> tuple[str, ...]:
    """Lambda: ``FunctionName`` is a name, a full or partial ARN, optionally ``name:qualifier``;
    the ARN authorized is the function's, with the qualifier when one is given."""
    name = str(where.params.get("FunctionName") or "")
    if not name:
        raise MissingResourceFact("lambda: no FunctionName")
    parts = name.split(":")
    if name.startswith("arn:"):
        base, qualifier = ":".join(parts[:7]), parts[7] if len(parts) > 7 else ""
    elif len(parts) >= 3 and parts[1] == "function":  # 123456789012:function:name[:qualifier]
        base = _arn(Where({}, parts[0], where.region, where.partition), "lambda", f"function:{parts[2]}")
        qualifier = parts[3] if len(parts) > 3 else ""
    else:
        base, qualifier = _arn(where, "lambda", f"function:{parts[0]}"), parts[1] if len(parts) > 1 else ""
    qualifier = str(where.params.get("Qualifier") or qualifier)
    return (f"{base}:{qualifier}" if qualifier else base,)


def _model_package(where: Where) -> tuple[str, ...]:
    """CreateModelPackage: a versioned package (``ModelPackageGroupName``) is
    ``model-package/<group>/<version>``; the version is the provider's (fact ``ModelPackageVersion``)."""
    group = where.params.get("ModelPackageGroupName")
    if group:
        version = (where.facts or {}).get("ModelPackageVersion")
        if version is None:
            raise MissingResourceFact(
                "CreateModelPackage: fact ModelPackageVersion (the next version) is needed"
            )
        return (_arn(where, "sagemaker", f"model-package/{str(group).lower()}/{version}"),)
    name = where.params.get("ModelPackageName")
    if not name:
        raise MissingResourceFact("CreateModelPackage: neither ModelPackageGroupName nor ModelPackageName")
    return (_arn(where, "sagemaker", f"model-package/{str(name).lower()}"),)


def _secret(where: Where) -> tuple[str, ...]:
    """Secrets Manager authorizes the full ARN (name + random suffix); a request naming the
    secret needs the provider's fact ``SecretArn``."""
    secret = str(where.params.get("SecretId") or "")
    fact = (where.facts or {}).get("SecretArn")
    if fact:
        return (str(fact),)
    if secret.startswith("arn:"):
        return (secret,)  # taken as the full ARN: a partial ARN cannot be told from a full one
    raise MissingResourceFact(f"secretsmanager: SecretId {secret!r} needs fact SecretArn (the full ARN)")


def _bus(where: Where, bus: object) -> str:
    """An EventBridge bus (a name or an ARN; none is the account's ``default`` bus) as its ARN."""
    name = str(bus or "default")
    return name if name.startswith("arn:") else _arn(where, "events", f"event-bus/{name}")


def _rule(where: Where) -> tuple[str, ...]:
    """EventBridge rule actions name the rule ``Name`` on ``EventBusName`` (default bus when
    absent): ``rule/<name>`` on the default bus, ``rule/<bus>/<name>`` on another."""
    name = str(where.params.get("Name") or "")
    if not name:
        raise MissingResourceFact("events: no rule Name")
    bus = _bus(where, where.params.get("EventBusName")).rsplit("/", 1)[-1]
    return (_arn(where, "events", f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"),)


def _event_buses(where: Where) -> tuple[str, ...]:
    """PutEvents: the bus of every entry (``Entries[].EventBusName``, default bus when absent)."""
    out: list[str] = []
    for entry in where.params.get("Entries") or [{}]:
        arn = _bus(where, entry.get("EventBusName") if isinstance(entry, Mapping) else None)
        if arn not in out:
            out.append(arn)
    return tuple(out)


OVERRIDES: Mapping[str, Callable[[Where], tuple[str, ...]]] = {
    "events:describerule": _rule,
    "events:disablerule": _rule,
    "events:enablerule": _rule,
    "events:putevents": _event_buses,
    "greengrass:createcomponentversion": _recipe_component,
    "greengrass:resolvecomponentcandidates": _candidates,
    "lambda:invokefunction": _function,
    "lambda:getfunction": _function,
    "lambda:getfunctionconfiguration": _function,
    "sagemaker:createmodelpackage": _model_package,
    "secretsmanager:getsecretvalue": _secret,
    "secretsmanager:describesecret": _secret,
    "secretsmanager:putsecretvalue": _secret,
}
