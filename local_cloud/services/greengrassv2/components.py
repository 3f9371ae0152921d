"""Component versions: recipe parsing, artifact digests, version resolution (npm-style ranges)."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cmp_to_key
from typing import Any

import nodesemver
import yaml

from local_cloud.services.greengrassv2.exceptions import ValidationException
from local_cloud.services.greengrassv2.models import SEMVER


def parse_recipe(raw: bytes) -> dict[str, Any]:
    """Parse an inline recipe (JSON or YAML) and check the fields the service requires."""
    try:
        recipe = yaml.safe_load(raw.decode("utf-8"))  # YAML is a superset of JSON
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationException(f"The recipe could not be parsed: {exc}", reason="OTHER") from exc
    if not isinstance(recipe, dict):
        raise ValidationException("The recipe must be a JSON or YAML object", reason="OTHER")
    for field in ("RecipeFormatVersion", "ComponentName", "ComponentVersion"):
        if not recipe.get(field):
            raise ValidationException(f"The recipe is missing the required field {field}", reason="OTHER")
    version = str(recipe["ComponentVersion"])
    if not SEMVER.match(version):
        raise ValidationException(
            f"Component version {version} is not a valid semantic version (major.minor.patch)", reason="OTHER"
        )
    recipe["ComponentVersion"] = version
    return recipe


def artifact_uris(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """Every artifact entry of every manifest (the dicts are the recipe's own, to be updated)."""
    return [
        a for m in recipe.get("Manifests") or [] for a in (m.get("Artifacts") or []) if isinstance(a, dict)
    ]


def fill_digests(recipe: dict[str, Any], fetch: Any) -> dict[str, str]:
    """Compute base64 SHA-256 of each s3:// artifact into the recipe; returns uri -> error."""
    errors: dict[str, str] = {}
    for artifact in artifact_uris(recipe):
        uri = str(artifact.get("Uri") or artifact.get("URI") or "")
        if not uri.startswith("s3://"):
            continue
        try:
            data = fetch(uri)
        except Exception as exc:
            errors[uri] = f"Failed to get artifact {uri}: {exc}"
            continue
        artifact["Digest"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
        artifact["Algorithm"] = "SHA-256"
    return errors


def render_recipe(recipe: dict[str, Any], fmt: str) -> bytes:
    if fmt == "YAML":
        return yaml.safe_dump(recipe, sort_keys=False).encode()
    return json.dumps(recipe).encode()


def choose_version(available: list[str], requested: str | None, requirements: list[str]) -> str | None:
    """The version a core should use: the requested one if it satisfies every requirement, else
    the highest one that satisfies them all (what the nucleus asks the cloud to decide)."""

    def ok(version: str) -> bool:
        return all(nodesemver.satisfies(version, r, loose=False) for r in requirements if r)

    if requested:
        return requested if requested in available and ok(requested) else None
    candidates = [v for v in available if ok(v)]
    if not candidates:
        return None
    return max(candidates, key=cmp_to_key(lambda a, b: nodesemver.compare(a, b, False)))
