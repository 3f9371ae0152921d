"""The simulated core: wires identity, IPC, the component store, deployments and status together.

Each concern lives in its own package (see ``edge_runtime.core``); this module only builds them,
connects them and starts and stops them in order. State lives under ``root`` like a nucleus root
(``config/effective.json``, ``packages/``, ``work/``, ``logs/``), so a restarted core brings back
its components without a new deployment.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .components import Cloud, ComponentStore, Paths
from .config import ConfigStore
from .config.effective import EffectiveConfig
from .deployment import (
    ComponentHooks,
    DeploymentActivator,
    DeploymentService,
    DeploymentStatusKeeper,
    IotJobsHelper,
    Waits,
)
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
from .ipc.server import Handler
from .mqtt import IotConnection
from .status import FleetStatusReporter, component_statuses
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


class Core:
    """A Greengrass core device stand-in; ``start()`` / ``stop()``."""

    def __init__(
        self, settings: CoreSettings, *, cloud: Cloud | None = None, iot: IotConnection | None = None
    ) -> None:
        self.settings = settings
        self.thing = settings.identity.thing_name
        self.paths = Paths(Path(settings.root).resolve())
        self.cloud = cloud or Cloud(region=settings.region)
        self.store = ComponentStore(self.paths, self.cloud.download)
        self.configs = ConfigStore()
        self.tokens = TokenRegistry()
        self.local = LocalPubSub()
        self.iot = iot or IotConnection(settings.identity)
        self.effective = EffectiveConfig(self.paths.root / "config" / "effective.json", self.thing)
        self.activator = DeploymentActivator(
            self.thing,
            self.paths,
            store=self.store,
            cloud=self.cloud,
            configs=self.configs,
            effective=self.effective,
            hooks=ComponentHooks(
                env=self._component_env, stopped=self._disconnect, removed=self.tokens.revoke
            ),
            waits=Waits(settings.deployment_timeout_s, settings.settle_s),
        )
        self.authorizer = Authorizer(
            lambda c: self.configs.get(c, ["accessControl"]) or {},
            self.thing,
            watch=lambda c, changed: self.configs.watch(c, ["accessControl"], lambda _path: changed()),
        )
        self.ipc = IpcServer(self._socket_path(), self.tokens, self._ipc_handlers())
        self.jobs = IotJobsHelper(self.thing, self.iot.client)
        self.status = DeploymentStatusKeeper(self.thing, self.jobs.update)
        self.fleet = FleetStatusReporter(
            self.thing, self.component_statuses, self._publish, settings.heartbeat_s
        )
        self.deployments = DeploymentService(self.activator, self.status, after_each=self._report_fleet)

    def _ipc_handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {}
        handlers.update(pubsub.handlers(self.local, self.authorizer))
        handlers.update(mqttproxy.handlers(self.iot, self.authorizer))
        handlers.update(config_ops.handlers(self.configs))
        handlers.update(lifecycle_ops.handlers(self.activator.report_state))
        return handlers

    # -- start/stop -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start IPC, bring back the components on disk, connect, listen for deployments."""
        for sub in ("config", "packages", "work", "logs"):
            (self.paths.root / sub).mkdir(parents=True, exist_ok=True)
        self.ipc.start()
        restored = self.effective.load(self.store.load_recipe_raw)
        self.iot.start()
        if restored.recipes:
            self.activator.apply(restored)
        self.deployments.start()
        self.jobs.connect(self.deployments.on_job_execution)
        self.iot.on_connect(self.jobs.resume)
        self._report_fleet()
        self.fleet.start()
        log.info("core %s started at %s", self.thing, self.paths.root)

    def stop(self) -> None:
        """Stop components (their shutdown steps run), then IPC and MQTT."""
        self.fleet.stop()
        self.deployments.stop()
        self.activator.stop_all()
        self.ipc.stop()
        self.iot.stop()
        if self._socket_path().parent != self.paths.root:
            shutil.rmtree(self._socket_path().parent, ignore_errors=True)

    # -- status ---------------------------------------------------------------------------------
    def current_target(self) -> Target:
        """What runs now (a copy), as the last deployment or restart left it."""
        return self.activator.current_target()

    def component_statuses(self) -> list[dict[str, Any]]:
        """Per-component entries of the fleet status."""
        return component_statuses(*self.activator.snapshot())

    def _report_fleet(self) -> None:
        with contextlib.suppress(Exception):
            self.fleet.report()

    def _publish(self, topic: str, payload: bytes) -> None:
        try:
            self.iot.publish(topic, payload, 1)
        except Exception:
            log.exception("publish to %s failed", topic)

    # -- what a component process gets from the core --------------------------------------------
    def _socket_path(self) -> Path:
        """``<root>/ipc.socket``, or a short private path when that would exceed sun_path."""
        path = self.paths.root / "ipc.socket"
        if len(str(path)) < 100:
            return path
        digest = hashlib.sha256(str(self.paths.root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"mlops-edge-{digest}" / "ipc.socket"

    def _component_env(self, name: str) -> dict[str, str]:
        """The nucleus's variables: IPC socket and token, thing, region, CA."""
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

    def _disconnect(self, name: str) -> None:
        self.ipc.disconnect(name)
