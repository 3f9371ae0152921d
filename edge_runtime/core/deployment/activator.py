"""Deployment activation: the device side of a deployment, the :class:`~.service.Kernel` it drives.

The nucleus splits a deployment into a task that resolves and prepares packages
(``DefaultDeploymentTask``, here :class:`~.service.DeploymentService`) and an activator that swaps
the running services, waits for them and keeps or rolls back the result (``DefaultActivator``).
This is the activator, and it owns the running set: which component services run, with which
lifecycle (a fingerprint of version, interpolated lifecycle and configuration, so an unchanged
component keeps running across deployments), in dependency order.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..components import Cloud, ComponentStore, Context, Paths, interpolate_tree
from ..config import ConfigStore
from ..config.effective import EffectiveConfig
from ..lifecycle import ComponentService, Step, parse_lifecycle
from ..target import Target


@dataclass(frozen=True)
class Waits:
    """How long a deployment may take to settle; the defaults suit a device, tests shorten them."""

    deployment_timeout_s: float = 300.0
    settle_s: float = 2.0


@dataclass(frozen=True)
class ComponentHooks:
    """What a component's process needs from the rest of the core, and what its removal ends.

    ``env``: the variables that let it find and authenticate to IPC; ``stopped``: drop its IPC
    connections; ``removed``: forget its IPC token once no deployment names it.
    """

    env: Callable[[str], dict[str, str]]
    stopped: Callable[[str], None]
    removed: Callable[[str], None]


@dataclass
class _Running:
    service: ComponentService
    fingerprint: str


@dataclass(frozen=True)
class _Plan:
    fingerprint: str
    steps: dict[str, Step]
    setenv: dict[str, str]


class DeploymentActivator:
    """Makes the running component set equal a target; commits it to disk and the store."""

    def __init__(
        self,
        thing_name: str,
        paths: Paths,
        *,
        store: ComponentStore,
        cloud: Cloud,
        configs: ConfigStore,
        effective: EffectiveConfig,
        hooks: ComponentHooks,
        waits: Waits | None = None,
    ) -> None:
        self.thing = thing_name
        self.paths = paths
        self.store = store
        self.cloud = cloud
        self.configs = configs
        self.effective = effective
        self.hooks = hooks
        self.waits = waits or Waits()
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._target = Target()

    # -- Kernel ---------------------------------------------------------------------------------
    def current_target(self) -> Target:
        with self._lock:
            return self._target.copy()

    def thing_groups(self) -> set[str] | None:
        """The thing groups this core belongs to now (None: the cloud could not say)."""
        return self.cloud.thing_groups(self.thing)

    def fetch_recipe(self, name: str, version: str | None, requirements: dict[str, str]) -> Any:
        """A recipe from the local store when the exact version is already there, else the cloud."""
        if version:
            raw = self.store.load_recipe_raw(name, version)
            if raw is not None:
                return raw
        return self.cloud.fetch_recipe(name, version, requirements)

    def fetch_and_verify(self, target: Target) -> None:
        """Install only once every artifact of every component has been downloaded and verified."""
        fetched = {name: self.store.fetch_all(recipe) for name, recipe in target.recipes.items()}
        for name, recipe in target.recipes.items():
            self.store.install(recipe, fetched[name])

    def apply(self, target: Target) -> None:
        """Make the running set equal ``target``: stop removed/changed, start new/changed."""
        plans = {name: self._plan(target, name) for name in target.recipes}
        with self._lock:
            current = dict(self._running)
            previous = self._target
        changed = [n for n in current if n not in plans or current[n].fingerprint != plans[n].fingerprint]
        self._stop(changed, previous)
        for name in target.recipes:
            self.configs.set(name, target.configs.get(name, {}))
        for name in start_order(target):
            with self._lock:
                if name in self._running:
                    continue
            self._start(name, target.recipes[name].version, plans[name])
        for name in list(self.configs.snapshot()):
            if name not in target.recipes:
                self.configs.remove(name)
        with self._lock:
            self._target = target

    def wait_healthy(self, target: Target) -> dict[str, str]:
        """{component: state} of those not RUNNING/FINISHED (stable for settle_s) in time."""
        deadline = time.monotonic() + self.waits.deployment_timeout_s
        bad: dict[str, str] = {}
        for name in start_order(target):
            with self._lock:
                running = self._running.get(name)
            if running is None:
                bad[name] = "NOT_RUNNING"
                continue
            remaining = max(0.0, deadline - time.monotonic())
            state = running.service.wait_settled(remaining, self.waits.settle_s)
            if not state.is_healthy_end:
                reason = running.service.status_reason
                bad[name] = f"{state.value} ({reason})" if reason else state.value
        return bad

    def commit(self, target: Target, replaced: Target | None) -> None:
        """Persist ``target`` and clean what only ``replaced`` used (artifacts, work dirs)."""
        with self._lock:
            self._target = target
        self.effective.save(target)
        if replaced is None:
            return
        keep = target.versions
        for name, recipe in replaced.recipes.items():
            if keep.get(name) != recipe.version:
                self.store.remove(name, recipe.version)
            if name not in keep:
                shutil.rmtree(self.paths.work(name), ignore_errors=True)
                self.hooks.removed(name)

    # -- the running set ------------------------------------------------------------------------
    def stop_all(self) -> None:
        """Stop every component, dependents before their dependencies (their shutdown steps run)."""
        with self._lock:
            names = list(self._running)
            target = self._target
        self._stop(names, target)

    def snapshot(self) -> tuple[Target, dict[str, ComponentService]]:
        """The current target and the services running it, for status reports."""
        with self._lock:
            return self._target, {name: r.service for name, r in self._running.items()}

    def report_state(self, component: str, state: str) -> None:
        """A component's own UpdateState over IPC."""
        with self._lock:
            running = self._running.get(component)
        if running is not None:
            running.service.report(state)

    def _plan(self, target: Target, name: str) -> _Plan:
        recipe = target.recipes[name]
        ctx = Context(name, target.versions, lambda c: target.configs.get(c, {}), self.paths, self.thing)
        lifecycle = interpolate_tree(recipe.lifecycle, ctx)
        setenv, steps = parse_lifecycle(lifecycle)
        fingerprint = hashlib.sha256(
            json.dumps(
                {"v": recipe.version, "l": lifecycle, "c": target.configs.get(name, {})}, sort_keys=True
            ).encode()
        ).hexdigest()
        return _Plan(fingerprint, steps, setenv)

    def _start(self, name: str, version: str, plan: _Plan) -> None:
        service = ComponentService(
            name,
            version,
            steps=plan.steps,
            setenv=plan.setenv,
            env=self.hooks.env(name),
            work_dir=self.paths.work(name),
            log_path=self.paths.log(name),
        )
        with self._lock:
            self._running[name] = _Running(service, plan.fingerprint)
        service.start()

    def _stop(self, names: list[str], ordered_by: Target) -> None:
        """Stop ``names`` in ``ordered_by``'s reverse dependency order, then any it does not name."""
        order = [n for n in reversed(start_order(ordered_by)) if n in names]
        for name in order + [n for n in names if n not in ordered_by.recipes]:
            with self._lock:
                running = self._running.pop(name, None)
            if running is None:
                continue
            running.service.stop()
            self.hooks.stopped(name)


def start_order(target: Target) -> list[str]:
    """Dependencies before dependents, otherwise by name (a cycle is broken where it is met)."""
    done: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in done or name in stack or name not in target.recipes:
            return
        for dep in target.recipes[name].dependencies:
            visit(dep, (*stack, name))
        done.append(name)

    for name in sorted(target.recipes):
        visit(name, ())
    return done
