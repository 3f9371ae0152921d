"""Names and tags as CloudFormation makes them: a stack's name from its id, generated physical
names, a template's ``Tags`` in the shapes the APIs take."""

from __future__ import annotations

import secrets
import string
from typing import Any


def stack_name_of(stack_id: str) -> str:
    """``arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>`` -> ``<name>``."""
    return stack_id.split(":stack/", 1)[-1].split("/", 1)[0]


def generated_name(stack_name: str, logical_id: str, *, limit: int, lower: bool = False) -> str:
    """A name as CloudFormation makes one: ``<stack>-<logical id>-<random>``, cut to the limit."""
    alphabet = string.ascii_lowercase + string.digits if lower else string.ascii_uppercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(12))
    prefix = f"{stack_name}-{logical_id}"[: max(1, limit - len(suffix) - 1)].rstrip("-")
    name = f"{prefix}-{suffix}"
    return name.lower() if lower else name


def tag_list(properties: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """The template's ``Tags`` as the list most APIs take (``[{Key, Value}]``, or other casings)."""
    return [{key: str(t["Key"]), value: str(t["Value"])} for t in properties.get("Tags") or []]


def tag_dict(properties: dict[str, Any]) -> dict[str, str]:
    tags = properties.get("Tags") or []
    if isinstance(tags, dict):  # a few types (e.g. AWS::SSM::Parameter) take a map
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags}
