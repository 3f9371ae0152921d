"""Events as EventBridge shapes them, rules' patterns and targets' input: pure functions.

Only the documented shapes: the event envelope (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time``, ``region``, ``resources``, ``detail``), SageMaker's *Model Package State
Change* detail (the model package as DescribeModelPackage describes it), and a target's ``Input``,
``InputPath`` or ``InputTransformer``. Pattern matching is moto's own
(``EventPattern``), so a rule matches here as it does for moto's targets.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def envelope(source: str, detail_type: str, detail: dict[str, Any], *, account: str, region: str,
             resources: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """An event as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources or []),
        "detail": detail,
        "ingestion-time": time.time(),  # for moto's input templates; dropped from what targets get
    }


def model_package_state_change(package: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
    """*SageMaker Model Package State Change* for a package as DescribeModelPackage returns it."""
    detail = _jsonable({k: v for k, v in package.items() if k != "ResponseMetadata"})
    return envelope(
        "aws.sagemaker",
        MODEL_PACKAGE_STATE_CHANGE,
        detail,
        account=account,
        region=region,
        resources=[package["ModelPackageArn"]],
    )


def matches(pattern: str | None, event: dict[str, Any]) -> bool:
    from moto.events.models import EventPattern

    if not pattern:
        return False  # a scheduled rule: no events
    return EventPattern(pattern, json.loads(pattern)).matches_event(_delivered(event))


def _delivered(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "ingestion-time"}


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What the target receives: its constant ``Input``, the ``InputPath`` part, the transformed
    ``InputTransformer`` template, or the whole event."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        found = parse(target["InputPath"]).find(_delivered(event))
        return json.dumps(found[0].value if found else None)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(
            transformer.get("InputTemplate") or "", transformer.get("InputPathsMap") or {}, event
        )
    return json.dumps(_delivered(event))


def transform(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """An ``InputTransformer`` template filled in as EventBridge does it: a placeholder inside a JSON
    string gets the value's text, one outside gets the value as JSON (a string with its quotes),
    a path that finds nothing gives ``null``; ``<aws.events.event.json>`` is the whole event.
    (moto's own parser pastes strings without quotes, which breaks the template CDK's
    ``RuleTargetInput.fromObject`` writes: ``"model_package_arn":<detail-ModelPackageArn>``.)"""
    from jsonpath_ng.ext import parse

    delivered = _delivered(event)
    values: dict[str, Any] = {"aws.events.event.json": delivered, "aws.events.event": delivered}
    for name, path in paths.items():
        found = parse(path).find(delivered)
        values[name] = found[0].value if found else None

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        quoted = template.count('"', 0, match.start()) % 2 == 1  # inside a JSON string
        if quoted:
            return json.dumps(value)[1:-1] if isinstance(value, str) else json.dumps(value)
        return json.dumps(value)

    return re.sub(r"<([A-Za-z0-9_.\-]+)>", fill, template)
