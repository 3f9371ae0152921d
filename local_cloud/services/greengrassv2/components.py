"""Component versions: the record, recipe parsing, artifact digests, version resolution.

A version is created REQUESTED from an inline recipe, INITIATED while its S3 artifacts are read
to compute their digests, then DEPLOYABLE (or FAILED, naming each unreadable artifact). Version
ranges are npm-style, as the nucleus resolves them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cmp_to_key
from typing import Any

import nodesemver
import yaml

from local_cloud.services.greengrassv2.arns import Arns
from local_cloud.services.greengrassv2.exceptions import ResourceNotFoundException, ValidationException

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def parse_recipe(raw: bytes) -> dict[str, Any]:
    """Parse an inline recipe (JSON or YAML) and check the fields the service requires."""
    try:
        recipe = yaml.safe_load(raw.decode("utf-8"))  # YAML is a superset of JSON
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationException(f"The recipe could not be parsed: {exc}", reason="OTHER") from exc
    if not isinstance(recipe, dict):
        raise ValidationException("The recipe must be a JSON or YAML object", reason="OTHER")
    for required in ("RecipeFormatVersion", "ComponentName", "ComponentVersion"):
        if not recipe.get(required):
            raise ValidationException(f"The recipe is missing the required field {required}", reason="OTHER")
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


class ComponentState(StrEnum):
    REQUESTED = "REQUESTED"
    INITIATED = "INITIATED"
    DEPLOYABLE = "DEPLOYABLE"
    FAILED = "FAILED"
    DEPRECATED = "DEPRECATED"


@dataclass
class ComponentVersion:
    arn: str
    name: str
    version: str
    created: float
    #: the stored recipe; artifact digests are filled in while the version is INITIATED
    recipe: dict[str, Any]
    publisher: str = ""
    description: str = ""
    platforms: list[dict[str, Any]] = field(default_factory=list)
    state: ComponentState = ComponentState.REQUESTED
    message: str = "NONE"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any], arn: str, now: float) -> ComponentVersion:
        platforms = [
            {
                "name": (m.get("Platform") or {}).get("os", "all"),
                "attributes": {str(k): str(v) for k, v in (m.get("Platform") or {}).items()},
            }
            for m in recipe.get("Manifests") or []
        ]
        return cls(
            arn=arn,
            name=recipe["ComponentName"],
            version=recipe["ComponentVersion"],
            created=now,
            recipe=recipe,
            publisher=str(recipe.get("ComponentPublisher", "")),
            description=str(recipe.get("ComponentDescription", "")),
            platforms=platforms,
        )

    @property
    def deployable(self) -> bool:
        return self.state is ComponentState.DEPLOYABLE

    def finish(self, recipe: dict[str, Any], errors: dict[str, str]) -> None:
        """INITIATED → DEPLOYABLE, or FAILED naming every artifact that could not be read."""
        self.recipe = recipe
        if errors:
            self.state, self.message, self.errors = ComponentState.FAILED, "; ".join(errors.values()), errors
        else:
            self.state, self.message, self.errors = ComponentState.DEPLOYABLE, "NONE", {}

    def status(self) -> dict[str, Any]:
        return {
            "componentState": self.state.value,
            "message": self.message,
            "errors": dict(self.errors),
            "vendorGuidance": "ACTIVE",
            "vendorGuidanceMessage": "",
        }

    def created_summary(self) -> dict[str, Any]:
        """CreateComponentVersion's answer."""
        return {
            "arn": self.arn,
            "componentName": self.name,
            "componentVersion": self.version,
            "creationTimestamp": self.created,
            "status": self.status(),
        }

    def version_summary(self) -> dict[str, Any]:
        """ComponentVersionListItem."""
        return {"componentName": self.name, "componentVersion": self.version, "arn": self.arn}

    def latest_version(self) -> dict[str, Any]:
        """ComponentLatestVersion (ListComponents)."""
        return {
            "arn": self.arn,
            "componentVersion": self.version,
            "creationTimestamp": self.created,
            "description": self.description,
            "publisher": self.publisher,
            "platforms": self.platforms,
        }

    def to_dict(self) -> dict[str, Any]:
        """DescribeComponent (without tags)."""
        return {
            "arn": self.arn,
            "componentName": self.name,
            "componentVersion": self.version,
            "creationTimestamp": self.created,
            "publisher": self.publisher,
            "description": self.description,
            "platforms": self.platforms,
            "status": self.status(),
        }

    def to_state(self) -> dict[str, Any]:
        return {**self.to_dict(), "recipe": self.recipe}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ComponentVersion:
        status = data.get("status") or {}
        return cls(
            arn=data["arn"],
            name=data["componentName"],
            version=data["componentVersion"],
            created=float(data["creationTimestamp"]),
            recipe=data["recipe"],
            publisher=data.get("publisher") or "",
            description=data.get("description") or "",
            platforms=list(data.get("platforms") or []),
            state=ComponentState(status.get("componentState", "REQUESTED")),
            message=status.get("message", "NONE"),
            errors=dict(status.get("errors") or {}),
        )


def latest(versions: dict[str, ComponentVersion]) -> ComponentVersion:
    """The highest version (ListComponents' ``latestVersion``), whatever its state."""
    return versions[choose_version(list(versions), None, []) or next(iter(versions))]


def resolve(candidate: dict[str, Any], versions: dict[str, ComponentVersion], arns: Arns) -> ComponentVersion:
    """The DEPLOYABLE version of one ResolveComponentCandidates candidate, pinned or best match."""
    name = candidate.get("componentName", "")
    requested = candidate.get("componentVersion")
    requirements = list((candidate.get("versionRequirements") or {}).values())
    deployable = {v: r for v, r in versions.items() if r.deployable}
    version = choose_version(list(deployable), requested, requirements)
    if version is None:
        wanted = requested or " ".join(requirements) or "any"
        raise ResourceNotFoundException(
            f"No deployable version of {name} satisfies {wanted} (requirements: {requirements})",
            arns.component(name),
            "COMPONENT",
        )
    return deployable[version]
