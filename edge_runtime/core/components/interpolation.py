"""Recipe variables: ``{artifacts:path}``, ``{configuration:/a/b}``, ``{<dep>:artifacts:...}``, ...

Unknown variables are left untouched, as the nucleus does, so a typo shows in the component log
instead of silently becoming an empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_VARIABLE = re.compile(r"\{(?:([A-Za-z0-9._-]+):)?(artifacts|work|kernel|iot|configuration):([^{}]*)\}")


@dataclass(frozen=True)
class Paths:
    """Where a core keeps things (the nucleus root layout)."""

    root: Path

    def artifacts(self, name: str, version: str) -> Path:
        return self.root / "packages" / "artifacts" / name / version

    def decompressed(self, name: str, version: str) -> Path:
        return self.root / "packages" / "artifacts-unarchived" / name / version

    def work(self, name: str) -> Path:
        return self.root / "work" / name

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def recipe(self, name: str, version: str) -> Path:
        return self.root / "packages" / "recipes" / f"{name}@{version}.json"


def json_pointer(doc: Any, pointer: str) -> Any:
    """Value at an RFC 6901 pointer (``/a/b``); None when absent."""
    if pointer in ("", "/"):
        return doc
    node = doc
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


@dataclass
class Context:
    """What interpolation of one component needs: itself, its versions, everyone's config."""

    component: str
    versions: dict[str, str]  # component -> resolved version (the whole deployment)
    configs: Callable[[str], dict[str, Any]]
    paths: Paths
    thing_name: str


def interpolate(text: str, ctx: Context) -> str:
    """Replace every recipe variable ``ctx`` knows in ``text``."""

    def replace(match: re.Match[str]) -> str:
        owner, namespace, key = match.group(1) or ctx.component, match.group(2), match.group(3)
        version = ctx.versions.get(owner)
        if namespace == "iot" and key == "thingName" and match.group(1) is None:
            return ctx.thing_name
        if namespace == "kernel" and key == "rootPath" and match.group(1) is None:
            return str(ctx.paths.root)
        if version is None:
            return match.group(0)
        if namespace == "artifacts" and key == "path":
            return str(ctx.paths.artifacts(owner, version))
        if namespace == "artifacts" and key == "decompressedPath":
            return str(ctx.paths.decompressed(owner, version))
        if namespace == "work" and key == "path":
            return str(ctx.paths.work(owner))
        if namespace == "configuration":
            value = json_pointer(ctx.configs(owner), key)
            if value is None:
                return match.group(0)
            return value if isinstance(value, str) else json.dumps(value)
        return match.group(0)

    return _VARIABLE.sub(replace, text)


def interpolate_tree(value: Any, ctx: Context) -> Any:
    """Interpolate every string inside a lifecycle mapping."""
    if isinstance(value, str):
        return interpolate(value, ctx)
    if isinstance(value, dict):
        return {k: interpolate_tree(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate_tree(v, ctx) for v in value]
    return value
