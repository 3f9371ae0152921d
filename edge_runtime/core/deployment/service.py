"""The deployment queue and task: prepare (no state change), activate, wait, commit or roll back.

Order matters for the guarantees the pipeline relies on:
1. resolve every version and download + verify every artifact first — a bad digest fails here
   with FAILED_NO_STATE_CHANGE and nothing of the deployment has run;
2. activate (stop removed/changed components, start new ones) and wait until each is RUNNING or
   FINISHED and stays so for a short settle time; BROKEN or a timeout fails the deployment;
3. on failure with ROLLBACK, re-activate the previous set and report FAILED_ROLLBACK_COMPLETE (or
   FAILED_UNABLE_TO_ROLLBACK); with DO_NOTHING, FAILED_ROLLBACK_NOT_REQUESTED.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from awsiot import iotjobs

from ..components.resolver import resolve
from ..config.store import apply_update
from ..exceptions import ComponentBroken, CoreError, InvalidDeployment
from ..target import Target
from .models import Deployment
from .status import DeploymentStatusKeeper

log = logging.getLogger(__name__)

#: The nucleus's name for a thing-group deployment's group: ``thinggroup/<name>``.
THING_GROUP_PREFIX = "thinggroup/"


class Kernel(Protocol):
    """What a deployment needs from the core."""

    def current_target(self) -> Target: ...

    def thing_groups(self) -> set[str] | None: ...

    def fetch_recipe(self, name: str, version: str | None, requirements: dict[str, str]) -> Any: ...

    def fetch_and_verify(self, target: Target) -> None: ...

    def apply(self, target: Target) -> None: ...

    def wait_healthy(self, target: Target) -> dict[str, str]: ...

    def commit(self, target: Target, replaced: Target | None) -> None: ...


class DeploymentService:
    """Runs deployments one at a time, in arrival order."""

    def __init__(
        self,
        kernel: Kernel,
        status: DeploymentStatusKeeper,
        *,
        after_each: Callable[[], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.status = status
        self._after_each = after_each
        self._queue: queue.Queue[iotjobs.JobExecutionData | None] = queue.Queue()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="deployments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def on_job_execution(self, execution: iotjobs.JobExecutionData) -> None:
        """notify-next / ``$next`` answers: queue the execution unless already seen.

        The same execution arrives more than once (a notification, then the answer to the
        request made on reconnecting); it runs once.
        """
        if not execution.job_id:
            return
        with self._lock:
            if execution.job_id in self._seen:
                return
            self._seen.add(execution.job_id)
        self.idle.clear()
        self._queue.put(execution)

    def _loop(self) -> None:
        while True:
            execution = self._queue.get()
            if execution is None:
                return
            try:
                self._run(execution)
            except Exception:
                log.exception("deployment task crashed")
            finally:
                if self._after_each:
                    self._after_each()
                if self._queue.empty():
                    self.idle.set()

    def _run(self, execution: iotjobs.JobExecutionData) -> None:
        try:
            deployment = Deployment.from_execution(execution)
        except InvalidDeployment as exc:
            stub = Deployment(str(execution.job_id), "", "", "", {}, "ROLLBACK")
            self.status.failed(stub, "REJECTED", exc)
            return
        self.status.in_progress(deployment)
        previous = self.kernel.current_target()
        try:
            target = self._prepare(deployment, previous)
        except Exception as exc:
            self.status.failed(deployment, "FAILED_NO_STATE_CHANGE", _as_core(exc))
            return
        try:
            self.kernel.apply(target)
            unhealthy = self.kernel.wait_healthy(target)
            if unhealthy:
                raise ComponentBroken(
                    "; ".join(f"{name} is {state}" for name, state in sorted(unhealthy.items()))
                )
        except Exception as exc:
            error = _as_core(exc)
            if deployment.failure_policy == "DO_NOTHING":
                self.kernel.commit(target, previous)
                self.status.failed(deployment, "FAILED_ROLLBACK_NOT_REQUESTED", error)
                return
            self._rollback(deployment, previous, target, error)
            return
        self.kernel.commit(target, previous)
        self.status.succeeded(deployment)

    def _rollback(self, deployment: Deployment, previous: Target, failed: Target, error: CoreError) -> None:
        log.warning("deployment %s failed (%s); rolling back", deployment.deployment_id, error)
        try:
            self.kernel.apply(previous)
            unhealthy = self.kernel.wait_healthy(previous)
        except Exception as exc:
            unhealthy = {"rollback": f"{type(exc).__name__}: {exc}"}
        self.kernel.commit(previous, failed)
        detailed = "FAILED_UNABLE_TO_ROLLBACK" if unhealthy else "FAILED_ROLLBACK_COMPLETE"
        self.status.failed(deployment, detailed, error)

    def _prepare(self, deployment: Deployment, previous: Target) -> Target:
        """Everything that can fail without touching what runs: resolve, download, verify."""
        target = previous.copy()
        self._drop_left_groups(deployment, target)
        target.groups[deployment.group_name] = {
            "components": {name: spec.version for name, spec in deployment.components.items()},
            "configurationArn": deployment.configuration_arn,
            "deploymentId": deployment.deployment_id,
        }
        resolution = resolve(target.roots(), self.kernel.fetch_recipe)
        target.recipes = dict(resolution.recipes)
        configs = {}
        for name, recipe in target.recipes.items():
            spec = deployment.components.get(name)
            configs[name] = apply_update(
                recipe.default_configuration,
                previous.configs.get(name),
                spec.configuration_update if spec else None,
            )
        target.configs = configs
        self.kernel.fetch_and_verify(target)
        return target

    def _drop_left_groups(self, deployment: Deployment, target: Target) -> None:
        """On a thing-group deployment, forget the components of thing groups this core has left,
        as the nucleus does (it lists its thing groups on such a deployment): a canary moved
        from the fleet group to the canary group must not keep the fleet's pinned versions, or the
        two groups' requirements conflict. Kept as they are when the cloud cannot say."""
        if not deployment.group_name.startswith(THING_GROUP_PREFIX):
            return
        stale = [g for g in target.groups if g.startswith(THING_GROUP_PREFIX) and g != deployment.group_name]
        current = self.kernel.thing_groups() if stale else None
        for group in stale if current is not None else ():
            if group.removeprefix(THING_GROUP_PREFIX) not in current:
                log.info("deployment %s: left %s, its components go", deployment.deployment_id, group)
                del target.groups[group]


def _as_core(exc: BaseException) -> CoreError:
    if isinstance(exc, CoreError):
        return exc
    wrapped = CoreError(f"{type(exc).__name__}: {exc}")
    wrapped.__cause__ = exc
    return wrapped
