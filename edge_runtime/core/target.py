"""A component set the core can run: what a deployment produces and what rollback restores."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .components.recipe import Recipe


@dataclass
class Target:
    """Root components per thing group, and every resolved component with its configuration."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def versions(self) -> dict[str, str]:
        return {name: recipe.version for name, recipe in self.recipes.items()}

    def roots(self) -> dict[str, dict[str, str]]:
        """{component: {group: pinned version}} over every group's deployment."""
        out: dict[str, dict[str, str]] = {}
        for group, info in self.groups.items():
            for name, version in (info.get("components") or {}).items():
                out.setdefault(name, {})[group] = version
        return out

    def fleet_config_arns(self, component: str) -> list[str]:
        return [
            str(info.get("configurationArn"))
            for info in self.groups.values()
            if component in (info.get("components") or {}) and info.get("configurationArn")
        ]

    def copy(self) -> Target:
        return Target(copy.deepcopy(self.groups), dict(self.recipes), copy.deepcopy(self.configs))
