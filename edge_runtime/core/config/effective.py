"""The effective configuration on disk: what the last deployment committed, read back on restart.

Like the nucleus's ``config/effectiveConfig.yaml``, it names every component version with its
configuration and each thing group's root components; recipes and artifacts stay in the
component store. A restarted core rebuilds its running set from it without a new deployment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..components.recipe import parse_recipe
from ..exceptions import CoreError
from ..target import Target

log = logging.getLogger(__name__)

#: ``(name, version) -> raw recipe or None``: where stored recipes come from (the component store)
RecipeSource = Callable[[str, str], "dict[str, Any] | None"]


class EffectiveConfig:
    """``<root>/config/effective.json``, written atomically."""

    def __init__(self, path: Path, thing_name: str) -> None:
        self.path = path
        self.thing = thing_name

    def save(self, target: Target) -> None:
        doc = {
            "thing": self.thing,
            "groups": target.groups,
            "components": {
                name: {"version": recipe.version, "configuration": target.configs.get(name, {})}
                for name, recipe in target.recipes.items()
            },
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        tmp.replace(self.path)

    def load(self, recipes: RecipeSource) -> Target:
        """The committed target; a component whose recipe is gone or unusable is left out (logged)."""
        if not self.path.is_file():
            return Target()
        doc = json.loads(self.path.read_text())
        target = Target(groups=doc.get("groups") or {})
        for name, info in (doc.get("components") or {}).items():
            raw = recipes(name, info["version"])
            if raw is None:
                log.error("recipe of %s %s missing from the store; not restored", name, info["version"])
                continue
            try:
                target.recipes[name] = parse_recipe(raw)
            except CoreError as exc:
                log.error("stored recipe of %s unusable: %s", name, exc)
                continue
            target.configs[name] = info.get("configuration") or {}
        return target
