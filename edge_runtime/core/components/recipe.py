"""Reading recipes the way the nucleus does: keys case-insensitive, first matching manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from ..exceptions import RecipeError


def ci(mapping: Any, key: str, default: Any = None) -> Any:
    """Case-insensitive lookup (recipes are case-insensitive; GDK even lowercases them)."""
    if not isinstance(mapping, dict):
        return default
    key = key.lower()
    for k, v in mapping.items():
        if str(k).lower() == key:
            return v
    return default


@dataclass(frozen=True)
class Artifact:
    """One artifact of the selected manifest."""

    uri: str
    digest: str | None
    algorithm: str | None
    unarchive: str

    @property
    def file_name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def unarchive_dir(self) -> str:
        """Folder Greengrass unzips into below ``decompressedPath``: the name without extension."""
        return self.file_name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Recipe:
    """The parts of a recipe the core acts on."""

    raw: dict[str, Any]
    name: str
    version: str
    dependencies: dict[str, tuple[str, str]]  # name -> (version requirement, HARD|SOFT)
    default_configuration: dict[str, Any]
    artifacts: tuple[Artifact, ...]
    lifecycle: dict[str, Any]


def load_recipe(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """A recipe document from JSON or YAML bytes (what resolve_component_candidates returns)."""
    if isinstance(data, dict):
        return data
    text = data.decode() if isinstance(data, bytes) else data
    try:
        doc = json.loads(text)
    except ValueError:
        doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise RecipeError("recipe is not a mapping")
    return doc


def _platform_ok(manifest: dict[str, Any]) -> bool:
    platform = ci(manifest, "platform") or {}
    os_name = str(ci(platform, "os", "*")).lower()
    arch = str(ci(platform, "architecture", "*")).lower()
    return os_name in ("*", "all", "linux", "/.*/") and arch in ("*", "all", "amd64", "x86_64", "/.*/")


def parse_recipe(data: bytes | str | dict[str, Any]) -> Recipe:
    """Parse and select the Linux manifest; raises :class:`RecipeError` when unusable."""
    raw = load_recipe(data)
    name = ci(raw, "componentname")
    version = ci(raw, "componentversion")
    if not name or not version:
        raise RecipeError("recipe lacks ComponentName or ComponentVersion")
    if str(ci(raw, "recipeformatversion")) != "2020-01-25":
        raise RecipeError(f"{name}: unsupported RecipeFormatVersion {ci(raw, 'recipeformatversion')!r}")
    deps = {}
    for dep_name, spec in (ci(raw, "componentdependencies") or {}).items():
        deps[str(dep_name)] = (
            str(ci(spec, "versionrequirement", "*")),
            str(ci(spec, "dependencytype", "HARD")).upper(),
        )
    manifests = [m for m in ci(raw, "manifests") or [] if isinstance(m, dict) and _platform_ok(m)]
    if ci(raw, "manifests") and not manifests:
        raise RecipeError(f"{name}: no manifest for linux/amd64")
    manifest = manifests[0] if manifests else {}
    artifacts = tuple(
        Artifact(
            uri=str(ci(a, "uri")),
            digest=ci(a, "digest"),
            algorithm=ci(a, "algorithm"),
            unarchive=str(ci(a, "unarchive", "NONE")).upper(),
        )
        for a in ci(manifest, "artifacts") or []
    )
    lifecycle = ci(manifest, "lifecycle")
    if lifecycle is None:
        lifecycle = ci(raw, "lifecycle") or {}
    config = ci(ci(raw, "componentconfiguration") or {}, "defaultconfiguration") or {}
    return Recipe(raw, str(name), str(version), deps, config, artifacts, lifecycle)
