"""What is checked before a template is deployed, as CloudFormation checks it before it starts:
resource types (the local cloud refuses any it cannot create, listing them all), capabilities,
parameters (SSM-typed ones read from Parameter Store) and the template's ``Rules``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from local_cloud.services.cloudformation.exceptions import (
    InsufficientCapabilities,
    UnsupportedResourceTypes,
    ValidationError,
)

#: Types that need CAPABILITY_IAM, and the property that makes one need CAPABILITY_NAMED_IAM.
IAM_TYPES: dict[str, str] = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::Policy": "",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::AccessKey": "",
    "AWS::IAM::UserToGroupAddition": "",
}
SSM_PARAMETER_TYPE = "AWS::SSM::Parameter::Value<"


def parse(text: str) -> dict[str, Any]:
    """A template's text (JSON, or YAML with short-form intrinsics) as a dict."""
    try:
        document = json.loads(text)
    except ValueError:
        from moto.cloudformation.models import Stack

        document = Stack.parse_template(text)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ValidationError("Template format error: At least one Resources member must be defined.")
    return document


def refused_types(template: Mapping[str, Any], supported: Collection[str]) -> dict[str, list[str]]:
    """Resource type -> logical ids, for every resource whose type the local cloud cannot create."""
    refused: dict[str, list[str]] = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource.get("Type", "")
        if kind not in supported:
            refused.setdefault(kind, []).append(logical_id)
    return refused


def check_types(template: Mapping[str, Any], supported: Collection[str]) -> None:
    refused = refused_types(template, supported)
    if refused:
        raise UnsupportedResourceTypes(refused)


def required_capability(template: Mapping[str, Any]) -> str | None:
    """CAPABILITY_NAMED_IAM, CAPABILITY_IAM or None, as CloudFormation decides it."""
    needed = None
    for resource in template["Resources"].values():
        kind = resource.get("Type")
        if kind in IAM_TYPES:
            needed = needed or "CAPABILITY_IAM"
            name_property = IAM_TYPES[kind]
            if name_property and name_property in (resource.get("Properties") or {}):
                return "CAPABILITY_NAMED_IAM"
    return needed


def check_capabilities(template: Mapping[str, Any], capabilities: Collection[str]) -> None:
    needed = required_capability(template)
    granted = set(capabilities)
    if (
        needed
        and needed not in granted
        and not (needed == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in granted)
    ):
        raise InsufficientCapabilities(f"Requires capabilities : [{needed}]")


def resolve_parameters(
    template: Mapping[str, Any], given: Mapping[str, str], read_ssm: Callable[[str], str | None]
) -> dict[str, Any]:
    """Every parameter's value (given, else default; SSM-typed ones read from Parameter Store)."""
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValidationError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, Any] = {}
    missing_ssm: list[str] = []
    missing: list[str] = []
    for name, spec in declared.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            missing.append(name)
            continue
        if str(spec.get("Type", "")).startswith(SSM_PARAMETER_TYPE):
            found = read_ssm(str(value))
            if found is None:
                missing_ssm.append(str(value))
                continue
            value = found
        values[name] = value
    if missing:
        raise ValidationError(f"Parameters: [{', '.join(missing)}] must have values")
    if missing_ssm:
        raise ValidationError(
            f"Unable to fetch parameters [{','.join(missing_ssm)}] from parameter store for this account."
        )
    return values


def _rule_value(node: Any, parameters: Mapping[str, Any]) -> Any:
    """Evaluate one rule expression (the functions CloudFormation allows in ``Rules``)."""
    if isinstance(node, list):
        return [_rule_value(item, parameters) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        return {k: _rule_value(v, parameters) for k, v in node.items()}
    ((function, args),) = node.items()
    if function == "Ref":
        if args not in parameters:
            raise ValidationError(
                f"Template format error: Unresolved dependencies [{args}] in the Rules block"
            )
        return parameters[args]
    values = _rule_value(args, parameters)
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::And":
        return all(values)
    if function == "Fn::Or":
        return any(values)
    if function == "Fn::Equals":
        return str(values[0]) == str(values[1])
    if function == "Fn::Contains":
        return str(values[1]) in [str(v) for v in values[0]]
    if function == "Fn::EachMemberEquals":
        return all(str(v) == str(values[1]) for v in values[0])
    if function == "Fn::EachMemberIn":
        return all(str(v) in [str(w) for w in values[1]] for v in values[0])
    raise ValidationError(f"Template format error: the local cloud cannot evaluate {function} in Rules")


def check_rules(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
    """Each rule's assertions hold (when its RuleCondition does), else CloudFormation's error."""
    for name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], parameters):
            continue
        for assertion in rule.get("Assertions") or []:
            if not _rule_value(assertion["Assert"], parameters):
                raise ValidationError(
                    assertion.get("AssertDescription") or f"Template error: rule {name} failed"
                )
