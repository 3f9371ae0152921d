"""Dependency resolution: pinned root versions, npm-style ranges, one version per component.

Why a maintained semver library: Greengrass evaluates ``VersionRequirement`` with npm range
semantics (``^1.0.0``, ``>=1.0.0 <2.0.0``, ``1.0.x``); ``nodesemver`` implements exactly those.
The cloud (``resolve_component_candidates``) chooses a version; the core re-checks that choice
against every requirement it knows, so a wrong answer fails here, before anything runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nodesemver

from ..exceptions import ResolutionError
from .recipe import Recipe, parse_recipe

#: fetch(component, version or None, {requirer: range}) -> recipe (dict, or JSON/YAML bytes)
Fetch = Callable[[str, str | None, dict[str, str]], Any]


def satisfies(version: str, requirement: str) -> bool:
    """True when ``version`` meets the npm-style ``requirement``."""
    try:
        return bool(nodesemver.satisfies(version, requirement, loose=False))
    except Exception:
        return False


def best_version(available: list[str], requirements: dict[str, str]) -> str | None:
    """Highest version of ``available`` that meets every requirement (None if none does)."""
    ok = [v for v in available if all(satisfies(v, r) for r in requirements.values())]
    if not ok:
        return None
    return nodesemver.max_satisfying(ok, "*", loose=False) or ok[-1]


@dataclass
class Resolution:
    """The resolved component set."""

    recipes: dict[str, Recipe] = field(default_factory=dict)
    requirements: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {requirer: range}

    @property
    def versions(self) -> dict[str, str]:
        return {name: r.version for name, r in self.recipes.items()}

    def dependents_first(self) -> list[str]:
        """Order to stop in: a component before the ones it depends on."""
        return list(reversed(self.dependencies_first()))

    def dependencies_first(self) -> list[str]:
        """Order to start in: dependencies before the components that need them."""
        done: list[str] = []
        seen: set[str] = set()

        def visit(name: str, stack: tuple[str, ...]) -> None:
            if name in seen:
                return
            if name in stack:
                raise ResolutionError(f"dependency cycle: {' -> '.join((*stack, name))}")
            for dep in self.recipes[name].dependencies:
                if dep in self.recipes:
                    visit(dep, (*stack, name))
            seen.add(name)
            done.append(name)

        for name in sorted(self.recipes):
            visit(name, ())
        return done


def resolve(roots: dict[str, dict[str, str]], fetch: Fetch) -> Resolution:
    """Resolve ``roots`` ({component: {requirer (group): exact version}}) and their dependencies."""
    result = Resolution()
    pending: deque[str] = deque()
    for name, reqs in roots.items():
        result.requirements.setdefault(name, {}).update(reqs)
        pending.append(name)
    while pending:
        name = pending.popleft()
        reqs = result.requirements[name]
        known = result.recipes.get(name)
        if known is not None:
            bad = {who: r for who, r in reqs.items() if not satisfies(known.version, r)}
            if bad:
                raise ResolutionError(
                    f"{name} {known.version} does not satisfy {bad} (all requirements: {reqs})"
                )
            continue
        pinned = {r for r in reqs.values() if nodesemver.valid(r, loose=False)}
        if len(pinned) > 1:
            raise ResolutionError(f"{name}: conflicting pinned versions {sorted(pinned)}")
        recipe = parse_recipe(fetch(name, next(iter(pinned), None), dict(reqs)))
        if recipe.name != name:
            raise ResolutionError(f"asked for {name}, the cloud returned {recipe.name}")
        bad = {who: r for who, r in reqs.items() if not satisfies(recipe.version, r)}
        if bad:
            raise ResolutionError(f"{name} {recipe.version} does not satisfy {bad}")
        result.recipes[name] = recipe
        for dep, (requirement, _dep_type) in recipe.dependencies.items():
            result.requirements.setdefault(dep, {})[name] = requirement
            pending.append(dep)
    result.dependencies_first()  # raises on cycles
    return result
