"""The activator with real component services (recipes without steps: no processes) on a tmp root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.core.components import Cloud, ComponentStore, Paths, parse_recipe
from edge_runtime.core.config import ConfigStore
from edge_runtime.core.config.effective import EffectiveConfig
from edge_runtime.core.deployment import ComponentHooks, DeploymentActivator, Waits
from edge_runtime.core.deployment.activator import start_order
from edge_runtime.core.status import component_statuses
from edge_runtime.core.target import Target

APP, LIB, TOOL = "com.example.App", "com.example.Lib", "com.example.Tool"


def _raw(name: str, version: str, deps: tuple[str, ...] = (), config: dict[str, Any] | None = None) -> dict:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDependencies": {d: {"VersionRequirement": "*"} for d in deps},
        "ComponentConfiguration": {"DefaultConfiguration": config or {}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {}}],
    }


def _target(*raws: dict[str, Any], roots: tuple[str, ...] = (APP,), configs: dict | None = None) -> Target:
    recipes = {r["ComponentName"]: parse_recipe(r) for r in raws}
    groups = {"g": {"components": {n: recipes[n].version for n in roots}, "configurationArn": "arn:g:1"}}
    return Target(groups=groups, recipes=recipes, configs=dict(configs or {}))


class Calls:
    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.removed: list[str] = []


@pytest.fixture
def rig(tmp_path: Path) -> tuple[DeploymentActivator, Calls, EffectiveConfig, ComponentStore]:
    paths = Paths(tmp_path)
    (tmp_path / "config").mkdir()
    store = ComponentStore(paths, lambda uri: pytest.fail(f"no download expected: {uri}"))
    effective = EffectiveConfig(tmp_path / "config" / "effective.json", "t1")
    calls = Calls()
    hooks = ComponentHooks(
        env=lambda name: {"GG_COMPONENT_NAME": name},
        stopped=calls.stopped.append,
        removed=calls.removed.append,
    )
    activator = DeploymentActivator(
        "t1",
        paths,
        store=store,
        cloud=Cloud(greengrass=object(), s3=object()),  # every recipe comes from the store here
        configs=ConfigStore(),
        effective=effective,
        hooks=hooks,
        waits=Waits(deployment_timeout_s=5.0, settle_s=0.0),
    )
    return activator, calls, effective, store


def test_start_order_puts_dependencies_first_and_breaks_cycles() -> None:
    target = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.0", (TOOL,)), _raw(TOOL, "1.0.0"))
    assert start_order(target) == [TOOL, LIB, APP]
    cyclic = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.0", (APP,)))
    assert sorted(start_order(cyclic)) == [APP, LIB]


def test_activate_commit_and_read_back(rig: Any) -> None:
    activator, calls, effective, store = rig
    target = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.0"), configs={APP: {"k": 1}})
    activator.fetch_and_verify(target)  # no artifacts: only the recipes are stored
    activator.apply(target)
    assert activator.wait_healthy(target) == {}
    activator.commit(target, None)
    saved = json.loads(effective.path.read_text())
    assert saved["components"] == {
        APP: {"version": "1.0.0", "configuration": {"k": 1}},
        LIB: {"version": "1.0.0", "configuration": {}},
    }
    restored = effective.load(store.load_recipe_raw)
    assert restored.versions == target.versions and restored.configs[APP] == {"k": 1}
    assert restored.groups == target.groups
    statuses = {s["componentName"]: s for s in component_statuses(*activator.snapshot())}
    assert statuses[APP]["state"] == "FINISHED" and statuses[APP]["isRoot"] is True
    assert statuses[LIB]["isRoot"] is False and statuses[APP]["fleetConfigArns"] == ["arn:g:1"]
    activator.stop_all()
    assert calls.stopped == [APP, LIB]  # dependents first


def test_only_changed_components_restart_and_removed_ones_are_cleaned(rig: Any) -> None:
    activator, calls, _effective, store = rig
    first = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.0"), _raw(TOOL, "1.0.0"), roots=(APP, TOOL))
    activator.fetch_and_verify(first)
    activator.apply(first)
    activator.commit(first, None)
    second = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.1"))
    activator.fetch_and_verify(second)
    activator.apply(second)
    assert calls.stopped == [TOOL, LIB]  # APP's own lifecycle and configuration are unchanged
    calls.stopped.clear()
    activator.commit(second, first)
    assert calls.removed == [TOOL]
    assert store.load_recipe_raw(LIB, "1.0.0") is None and store.load_recipe_raw(LIB, "1.0.1") is not None
    assert store.load_recipe_raw(APP, "1.0.0") is not None
    assert activator.current_target().versions == {APP: "1.0.0", LIB: "1.0.1"}
    same = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.1"))
    activator.apply(same)
    assert calls.stopped == []  # nothing changed, nothing restarts
    reconfigured = _target(_raw(APP, "1.0.0", (LIB,)), _raw(LIB, "1.0.1"), configs={APP: {"k": 2}})
    activator.apply(reconfigured)
    assert calls.stopped == [APP]  # same version, new configuration: restarted
    assert activator.configs.get(APP, []) == {"k": 2}
    activator.stop_all()


def test_restore_leaves_out_components_whose_recipe_is_gone(tmp_path: Path) -> None:
    effective = EffectiveConfig(tmp_path / "effective.json", "t1")
    assert effective.load(lambda n, v: None).recipes == {}  # nothing saved yet
    effective.save(_target(_raw(APP, "1.0.0"), _raw(LIB, "1.0.0"), roots=(APP, LIB)))
    recipes = {(APP, "1.0.0"): _raw(APP, "1.0.0"), (LIB, "1.0.0"): {"ComponentName": LIB}}
    restored = effective.load(lambda n, v: recipes.get((n, v)))
    assert list(restored.recipes) == [APP]  # LIB's stored recipe is unusable
    restored = effective.load(lambda n, v: None)
    assert restored.recipes == {} and set(restored.groups["g"]["components"]) == {APP, LIB}
