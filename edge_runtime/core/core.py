"""The simulated core: identity, IPC server, component store, lifecycle, deployments, status.

State lives under ``root`` like a nucleus root (``config/effective.json``, ``packages/``,
``work/``, ``logs/``), so a restarted core brings back its components without a new deployment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .components import Cloud, ComponentStore, Context, Paths, interpolate_tree, parse_recipe
from .config import ConfigStore
from .deployment import DeploymentService, DeploymentStatusKeeper
from .exceptions import CoreError
from .identity import Identity
from .ipc import (
    Authorizer,
    IpcServer,
    LocalPubSub,
    TokenRegistry,
    config_ops,
    lifecycle_ops,
    mqttproxy,
    pubsub,
)
from .lifecycle import ComponentService, State, parse_lifecycle
from .mqtt import IotConnection
from .status import FleetStatusReporter
from .target import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreSettings:
    """Tunables; the defaults suit a real device, tests shorten the waits."""

    root: Path
    identity: Identity
    region: str = "us-east-1"
    heartbeat_s: float = 30.0
    deployment_timeout_s: float = 300.0
    settle_s: float = 2.0


@dataclass
class _Running:
    service: ComponentService
    fingerprint: str


class Core:
    """A Greengrass core device stand-in; ``start()`` / ``stop()``."""

    def __init__(self, settings: CoreSettings, *, cloud: Cloud | None = None, iot: Any | None = None) -> None:
        self.settings = settings
        self.thing = settings.identity.thing_name
        self.paths = Paths(Path(settings.root).resolve())
        self.cloud = cloud or Cloud(region=settings.region)
        self.store = ComponentStore(self.paths, self.cloud.download)
        self.configs = ConfigStore()
        self.tokens = TokenRegistry()
        self.local = LocalPubSub()
        self.iot = iot or IotConnection(settings.identity)
        self._lock = threading.RLock()
        self._running: dict[str, _Running] = {}
        self._target = Target()
        self.authorizer = Authorizer(lambda c: self.configs.get(c, ["accessControl"]) or {}, self.thing)
        handlers = {}
        handlers.update(pubsub.handlers(self.local, self.authorizer))
        handlers.update(mqttproxy.handlers(self._bridge(), self.authorizer))
        handlers.update(config_ops.handlers(self.configs))
        handlers.update(lifecycle_ops.handlers(self._report_state))
        self.ipc = IpcServer(self._socket_path(), self.tokens, handlers)
        self.status = DeploymentStatusKeeper(self.thing, self._publish)
        self.fleet = FleetStatusReporter(
            self.thing, self.component_statuses, self._publish, settings.heartbeat_s
        )
        self.deployments = DeploymentService(self, self.status, after_each=self._report_fleet)
        self._job_subs: list[int] = []

    # -- start/stop -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start IPC, bring back the components on disk, connect, listen for deployments."""
        for sub in ("config", "packages", "work", "logs"):
            (self.paths.root / sub).mkdir(parents=True, exist_ok=True)
        self.ipc.start()
        restored = self._load_state()
        self.iot.start()
        if restored.recipes:
            self.apply(restored)
            self._target = restored
        jobs = f"$aws/things/{self.thing}/jobs"
        self._job_subs.append(self.iot.subscribe(f"{jobs}/notify-next", self.deployments.on_job_message))
        self._job_subs.append(
            self.iot.subscribe(f"{jobs}/$next/get/accepted", self.deployments.on_job_message)
        )
        self.deployments.start()
        self.iot.on_connect(self._ask_for_jobs)
        self._ask_for_jobs()
        self._report_fleet()
        self.fleet.start()
        log.info("core %s started at %s", self.thing, self.paths.root)

    def stop(self) -> None:
        """Stop components (their shutdown steps run), then IPC and MQTT."""
        self.fleet.stop()
        self.deployments.stop()
        with self._lock:
            names = list(self._running)
        order = [n for n in self._stop_order(self._target) if n in names] + [
            n for n in names if n not in self._target.recipes
        ]
        for name in order:
            self._stop_component(name)
        self.ipc.stop()
        self.iot.stop()
        if self._socket_path().parent != self.paths.root:
            shutil.rmtree(self._socket_path().parent, ignore_errors=True)

    def _ask_for_jobs(self) -> None:
        payload = json.dumps({"clientToken": f"{self.thing}-next"}).encode()
        self._publish(f"$aws/things/{self.thing}/jobs/$next/get", payload)

    # -- plumbing -------------------------------------------------------------------------------
    def _socket_path(self) -> Path:
        """``<root>/ipc.socket``, or a short private path when that would exceed sun_path."""
        path = self.paths.root / "ipc.socket"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha256(str(self.paths.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mlops-edge-{digest}" / "ipc.socket"

    def _publish(self, topic: str, payload: bytes) -> None:
        try:
            self.iot.publish(topic, payload, 1)
        except Exception:
            log.exception("publish to %s failed", topic)

    def _bridge(self) -> Any:
        core = self

        class _Bridge:
            def publish(self, topic: str, payload: bytes, qos: int, on_done: Any = None) -> None:
                core.iot.publish(topic, payload, qos, on_done=on_done)

            def subscribe(self, topic_filter: str, callback: Any) -> Any:
                return core.iot.subscribe(topic_filter, callback)

            def unsubscribe(self, handle: Any) -> None:
                core.iot.unsubscribe(handle)

        return _Bridge()

    def _report_state(self, component: str, state: str) -> None:
        with self._lock:
            running = self._running.get(component)
        if running is not None:
            running.service.report(state)

    def _report_fleet(self) -> None:
        with contextlib.suppress(Exception):
            self.fleet.report()

    def component_statuses(self) -> list[dict[str, Any]]:
        """Per-component entries of the fleet status."""
        with self._lock:
            target = self._target
            running = dict(self._running)
        roots = target.roots()
        out = []
        for name, recipe in sorted(target.recipes.items()):
            svc = running.get(name)
            out.append(
                {
                    "componentName": name,
                    "version": recipe.version,
                    "state": (svc.service.state.value if svc else State.NEW.value),
                    "isRoot": name in roots,
                    "fleetConfigArns": target.fleet_config_arns(name),
                    "statusDetails": {"errorCount": svc.service.errors} if svc and svc.service.errors else {},
                }
            )
        return out

    # -- Kernel (used by deployments) -----------------------------------------------------------
    def current_target(self) -> Target:
        with self._lock:
            return self._target.copy()

    def fetch_recipe(self, name: str, version: str | None, requirements: dict[str, str]) -> Any:
        """A recipe from the local store when the exact version is already there, else the cloud."""
        if version:
            raw = self.store.load_recipe_raw(name, version)
            if raw is not None:
                return raw
        return self.cloud.fetch_recipe(name, version, requirements)

    def fetch_and_verify(self, target: Target) -> None:
        fetched = {name: self.store.fetch_all(recipe) for name, recipe in target.recipes.items()}
        for name, recipe in target.recipes.items():  # only now, with every digest checked
            self.store.install(recipe, fetched[name])

    def apply(self, target: Target) -> None:
        """Make the running set equal ``target``: stop removed/changed, start new/changed."""
        plans = {name: self._plan(target, name) for name in target.recipes}
        with self._lock:
            current = dict(self._running)
        to_stop = [n for n in current if n not in plans or current[n].fingerprint != plans[n][0]]
        for name in [n for n in self._stop_order(self._target) if n in to_stop] + [
            n for n in to_stop if n not in self._target.recipes
        ]:
            self._stop_component(name)
        for name in target.recipes:
            self.configs.set(name, target.configs.get(name, {}))
        for name in self._start_order(target):
            with self._lock:
                if name in self._running:
                    continue
            fingerprint, steps, setenv = plans[name]
            recipe = target.recipes[name]
            service = ComponentService(
                name,
                recipe.version,
                steps=steps,
                setenv=setenv,
                env=self._component_env(name),
                work_dir=self.paths.work(name),
                log_path=self.paths.log(name),
            )
            with self._lock:
                self._running[name] = _Running(service, fingerprint)
            service.start()
        for name in list(self.configs.snapshot()):
            if name not in target.recipes:
                self.configs.remove(name)
        with self._lock:
            self._target = target

    def wait_healthy(self, target: Target) -> dict[str, str]:
        """{component: state} of those not RUNNING/FINISHED (stable for settle_s) in time."""
        import time

        deadline = time.monotonic() + self.settings.deployment_timeout_s
        bad: dict[str, str] = {}
        for name in self._start_order(target):
            with self._lock:
                running = self._running.get(name)
            if running is None:
                bad[name] = "NOT_RUNNING"
                continue
            remaining = max(0.0, deadline - time.monotonic())
            state = running.service.wait_settled(remaining, self.settings.settle_s)
            if not state.is_healthy_end:
                reason = running.service.status_reason
                bad[name] = f"{state.value} ({reason})" if reason else state.value
        return bad

    def commit(self, target: Target, replaced: Target | None) -> None:
        """Persist ``target`` and clean what only ``replaced`` used (artifacts, work dirs)."""
        with self._lock:
            self._target = target
        self._save_state(target)
        if replaced is None:
            return
        keep = target.versions
        for name, recipe in replaced.recipes.items():
            if keep.get(name) != recipe.version:
                self.store.remove(name, recipe.version)
            if name not in keep:
                shutil.rmtree(self.paths.work(name), ignore_errors=True)
                self.tokens.revoke(name)

    # -- components -----------------------------------------------------------------------------
    def _plan(self, target: Target, name: str) -> tuple[str, dict, dict]:
        recipe = target.recipes[name]
        ctx = Context(name, target.versions, lambda c: target.configs.get(c, {}), self.paths, self.thing)
        lifecycle = interpolate_tree(recipe.lifecycle, ctx)
        setenv, steps = parse_lifecycle(lifecycle)
        fingerprint = hashlib.sha256(
            json.dumps(
                {"v": recipe.version, "l": lifecycle, "c": target.configs.get(name, {})}, sort_keys=True
            ).encode()
        ).hexdigest()
        return fingerprint, steps, setenv

    def _component_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "SVCUID": self.tokens.token_for(name),
                "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": str(self.ipc.socket_path),
                "AWS_IOT_THING_NAME": self.thing,
                "AWS_REGION": self.settings.region,
                "AWS_DEFAULT_REGION": self.settings.region,
                "GG_ROOT_CA_PATH": str(self.settings.identity.ca_path or ""),
                "GG_COMPONENT_NAME": name,
            }
        )
        return env

    def _stop_component(self, name: str) -> None:
        with self._lock:
            running = self._running.pop(name, None)
        if running is None:
            return
        running.service.stop()
        self.ipc.disconnect(name)

    @staticmethod
    def _start_order(target: Target) -> list[str]:
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

    def _stop_order(self, target: Target) -> list[str]:
        return list(reversed(self._start_order(target)))

    # -- state on disk --------------------------------------------------------------------------
    def _state_file(self) -> Path:
        return self.paths.root / "config" / "effective.json"

    def _save_state(self, target: Target) -> None:
        doc = {
            "thing": self.thing,
            "groups": target.groups,
            "components": {
                name: {"version": recipe.version, "configuration": target.configs.get(name, {})}
                for name, recipe in target.recipes.items()
            },
        }
        path = self._state_file()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        tmp.replace(path)

    def _load_state(self) -> Target:
        path = self._state_file()
        if not path.is_file():
            return Target()
        doc = json.loads(path.read_text())
        target = Target(groups=doc.get("groups") or {})
        for name, info in (doc.get("components") or {}).items():
            raw = self.store.load_recipe_raw(name, info["version"])
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
