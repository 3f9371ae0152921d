"""The greengrassv2 backend: it holds the state and enforces the API's rules (moto's ``models.py``).

The provider parses a request, calls one method here and serializes the typed records it gets
back (``to_dict()``); the jobs transport does the same for the IoT Jobs MQTT operations. The
records live next to their concern and are re-exported here: component versions
(``components.py``), deployments (``deployments.py``), job executions with their transition table
(``executions.py``), core devices (``devices.py``).

All state sits behind one re-entrant lock and is written to disk (``store.py``) after every
change. Calls to other services (IoT membership through a ``ThingDirectory``, S3 artifact reads)
are made outside the lock: they are HTTP round trips to this same endpoint. Methods that change
what a device should do next return the things concerned; the caller tells them (notify-next) once
its own answer is out.

Over 400 lines (469): one class under one lock holds every rule that spans records (client
tokens, deployable components, supersede, fan-out to group members and continuous joins, tags);
splitting it further would split those rules from the state they guard. What could leave did: the
IoT job rules (``jobrules.py``, ``rollout.py``), request validation (``jobconfig.py``) and the
IAM facts (``iamfacts.py``).
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from local_cloud.services.greengrassv2 import components as comp
from local_cloud.services.greengrassv2.arns import Arns, Target, parse_component_arn
from local_cloud.services.greengrassv2.components import ComponentState, ComponentVersion
from local_cloud.services.greengrassv2.deployments import (
    Deployment,
    DeploymentPolicies,
    DeploymentStatus,
    effective_deployment,
)
from local_cloud.services.greengrassv2.devices import CoreDevice, DeviceRegistry, InstalledComponent
from local_cloud.services.greengrassv2.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from local_cloud.services.greengrassv2.executions import ExecutionBook, ExecutionStatus, JobExecution
from local_cloud.services.greengrassv2.iamfacts import iam_facts
from local_cloud.services.greengrassv2.jobconfig import validate_job_configuration
from local_cloud.services.greengrassv2.jobrules import release
from local_cloud.services.greengrassv2.rollout import RolloutState, env_minute_s
from local_cloud.services.greengrassv2.store import SaveOnce, StateFile
from local_cloud.services.greengrassv2.things import ThingDirectory

__all__ = [
    "ComponentState",
    "ComponentVersion",
    "CoreDevice",
    "Deployment",
    "DeploymentPolicies",
    "DeploymentStatus",
    "ExecutionStatus",
    "GreengrassBackend",
    "InstalledComponent",
    "JobExecution",
]


class GreengrassBackend:
    """Components, deployments, job executions and core devices of one account and region."""

    def __init__(
        self,
        arns: Arns,
        directory: ThingDirectory,
        store: StateFile | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        minute_s: Callable[[], float] = env_minute_s,
    ) -> None:
        self.arns = arns
        self.directory = directory
        self.store = store
        self.clock = clock
        self.minute_s = minute_s  # the length of a jobs "minute" (rollout rate, timeouts)
        self.new_id = new_id
        self.lock = threading.RLock()
        self.save_once = SaveOnce()
        self.components: dict[str, dict[str, ComponentVersion]] = {}  # name -> version -> record
        self.deployments: dict[str, Deployment] = {}  # deploymentId -> record
        self.executions = ExecutionBook()
        self.devices = DeviceRegistry()
        self.revisions: dict[str, int] = {}  # targetArn -> last revision
        self.client_tokens: dict[str, str] = {}  # clientToken -> component ARN or deploymentId
        self.tags: dict[str, dict[str, str]] = {}  # resource ARN -> tags
        data = store.load() if store is not None else None
        if data:
            self._restore(data)

    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "components": {
                    name: {version: c.to_state() for version, c in versions.items()}
                    for name, versions in self.components.items()
                },
                "deployments": {i: d.to_state() for i, d in self.deployments.items()},
                "executions": self.executions.to_state(),
                "core_devices": self.devices.to_state(),
                "revisions": dict(self.revisions),
                "client_tokens": dict(self.client_tokens),
                "tags": {arn: dict(tags) for arn, tags in self.tags.items()},
            }

    def _restore(self, data: dict[str, Any]) -> None:
        self.components = {
            name: {version: ComponentVersion.from_state(c) for version, c in versions.items()}
            for name, versions in (data.get("components") or {}).items()
        }
        self.deployments = {i: Deployment.from_state(d) for i, d in (data.get("deployments") or {}).items()}
        self.executions = ExecutionBook.from_state(data.get("executions") or {})
        self.devices = DeviceRegistry.from_state(data.get("core_devices") or {})
        self.revisions = dict(data.get("revisions") or {})
        self.client_tokens = dict(data.get("client_tokens") or {})
        self.tags = {arn: dict(tags) for arn, tags in (data.get("tags") or {}).items()}

    def save(self) -> None:
        if self.store is not None and not self.save_once.defer():
            with self.lock:
                self.store.write(self.snapshot())

    def saving_once(self) -> Any:
        """A block whose saves on this thread are one save at its end (``store.SaveOnce``)."""
        return self.save_once.block(self.save)

    # -- components ----------------------------------------------------------------------------
    def create_component_version(
        self, recipe: dict[str, Any], tags: dict[str, str] | None, client_token: str | None
    ) -> tuple[ComponentVersion, bool]:
        """A new REQUESTED version (True: to be processed); the same clientToken again returns the
        first one (False: it is processed already)."""
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        arn = self.arns.component(name, version)
        with self.lock:
            existing = self.components.get(name, {}).get(version)
            if existing is not None and client_token and self.client_tokens.get(client_token) == arn:
                return existing, False
            if existing is not None:
                raise ConflictException(
                    f"Component {name} version {version} already exists", arn, "COMPONENT_VERSION"
                )
            record = ComponentVersion.from_recipe(recipe, arn, self.clock())
            self.components.setdefault(name, {})[version] = record
            if client_token:
                self.client_tokens[client_token] = arn
            if tags:
                self.tags[arn] = dict(tags)
            self.save()
            return record, True

    def process_component(self, arn: str, fetch: Callable[[str], bytes]) -> None:
        """REQUESTED → INITIATED → DEPLOYABLE, or FAILED when an artifact cannot be read."""
        with self.lock:
            record = self._find_version(arn)
            if record is None:
                return  # deleted meanwhile
            record.state = ComponentState.INITIATED
            recipe = copy.deepcopy(record.recipe)
        errors = comp.fill_digests(recipe, fetch)  # S3 reads, outside the lock
        with self.lock:
            record.finish(recipe, errors)
            self.save()

    def _find_version(self, arn: str) -> ComponentVersion | None:
        name, version = parse_component_arn(arn, need_version=True)
        return self.components.get(name, {}).get(version or "")

    def component_version(self, arn: str) -> ComponentVersion:
        with self.lock:
            record = self._find_version(arn)
        if record is None:
            raise ResourceNotFoundException(f"Component version {arn} not found", arn, "COMPONENT_VERSION")
        return record

    def component_versions(self, arn: str) -> list[ComponentVersion]:
        """Every version of a component, newest first."""
        name, version = parse_component_arn(arn, need_version=False)
        if version:
            raise ValidationException(f"{arn} is a component version ARN; give the component ARN")
        with self.lock:
            versions = list(self.components.get(name, {}).values())
        if not versions:
            raise ResourceNotFoundException(f"Component {arn} not found", arn, "COMPONENT")
        return sorted(versions, key=lambda r: r.created, reverse=True)

    def latest_components(self) -> list[ComponentVersion]:
        """The highest version of each component, by component name."""
        with self.lock:
            return [
                comp.latest(self.components[name])
                for name in sorted(self.components)
                if self.components[name]
            ]

    def delete_component(self, arn: str) -> None:
        with self.lock:
            record = self.component_version(arn)
            del self.components[record.name][record.version]
            if not self.components[record.name]:
                del self.components[record.name]
            self.tags.pop(arn, None)
            self.save()

    def resolve_candidates(self, candidates: list[dict[str, Any]]) -> list[ComponentVersion]:
        """For each candidate the DEPLOYABLE version the nucleus should use (pinned or best match)."""
        with self.lock:
            return [
                comp.resolve(c, self.components.get(c.get("componentName", ""), {}), self.arns)
                for c in candidates
            ]

    # -- deployments ---------------------------------------------------------------------------
    def create_deployment(
        self,
        target: Target,
        *,
        name: str | None = None,
        components: dict[str, dict[str, Any]] | None = None,
        job_configuration: dict[str, Any] | None = None,
        policies: dict[str, Any] | None = None,
        parent_target_arn: str | None = None,
        tags: dict[str, str] | None = None,
        client_token: str | None = None,
    ) -> tuple[Deployment, list[str]]:
        """A new revision for the target, superseding the previous one; one execution per member.

        Returns the deployment and the things whose next execution changed.
        """
        components = components or {}
        validate_job_configuration(job_configuration)
        with self.lock:
            existing = self.deployments.get(self.client_tokens.get(client_token or "", ""))
            if existing is not None:
                return existing, []
        members = self.directory.members(target)  # IoT, outside the lock
        if members is None:
            raise ResourceNotFoundException(
                f"{target.noun} {target.name} not found", target.arn, target.resource_type
            )
        with self.lock:
            self._check_deployable(components)
            deployment = self._new_deployment(target, name, components, job_configuration, policies)
            deployment.parent_target_arn = parent_target_arn
            self.deployments[deployment.deployment_id] = deployment
            if tags:
                self.tags[self.arns.deployment(deployment.deployment_id)] = dict(tags)
            if client_token:
                self.client_tokens[client_token] = deployment.deployment_id
            touched = set(self._supersede(deployment))
            for thing in members:
                self.executions.add(
                    thing, deployment.deployment_id, deployment.job_id, deployment.created, released=False
                )
            touched.update(release(deployment, self.executions, self.clock(), self.minute_s()))
            self.save()
        return deployment, sorted(touched)

    def _check_deployable(self, components: dict[str, dict[str, Any]]) -> None:
        """Every component version must exist and be DEPLOYABLE (public ones are not stored here)."""
        for name, spec in components.items():
            if name.startswith("aws.greengrass."):
                continue
            version = spec.get("componentVersion")
            record = self.components.get(name, {}).get(version or "")
            if record is None:
                raise ResourceNotFoundException(
                    f"Component {name} version {version} not found",
                    self.arns.component(name, version),
                    "COMPONENT_VERSION",
                )
            if not record.deployable:
                raise ValidationException(
                    f"Component {name} version {version} is {record.state}, not DEPLOYABLE"
                )

    def _new_deployment(
        self,
        target: Target,
        name: str | None,
        components: dict[str, dict[str, Any]],
        job_configuration: dict[str, Any] | None,
        policies: dict[str, Any] | None,
    ) -> Deployment:
        revision = self.revisions.get(target.arn, 0) + 1
        self.revisions[target.arn] = revision
        job_id = self.new_id()
        created = self.clock()
        return Deployment(
            deployment_id=self.new_id(),
            target=target,
            revision=revision,
            name=name or f"Deployment for {target.name}",
            job_id=job_id,
            job_arn=self.arns.iot_job(job_id),
            configuration_arn=self.arns.configuration(target, revision),
            components=components,
            policies=DeploymentPolicies.from_api(policies),
            job_configuration=job_configuration or {},
            created=created,
            rollout=RolloutState.from_config(job_configuration, created),
            job_updated=created,
        )

    def _supersede(self, newest: Deployment) -> list[str]:
        """Older deployments to the target stop being latest; their QUEUED executions are canceled."""
        touched: list[str] = []
        for deployment in self.deployments.values():
            if deployment.target.arn != newest.target.arn or deployment is newest:
                continue
            if deployment.is_latest:
                deployment.job_updated = self.clock()
            deployment.supersede()
            touched += self.executions.end(
                deployment.deployment_id,
                ExecutionStatus.CANCELED,
                "superseded by a newer deployment to the same target",
                self.clock(),
                among=frozenset({ExecutionStatus.QUEUED}),
            )
        return touched

    def deployment(self, deployment_id: str) -> Deployment:
        with self.lock:
            deployment = self.deployments.get(deployment_id)
        if deployment is None:
            raise ResourceNotFoundException(
                f"Deployment {deployment_id} not found", deployment_id, "DEPLOYMENT"
            )
        return deployment

    def list_deployments(
        self, target_arn: str | None, parent_target_arn: str | None, latest_only: bool
    ) -> list[Deployment]:
        """Newest first."""
        with self.lock:
            found = sorted(self.deployments.values(), key=lambda d: d.created, reverse=True)
        return [
            d
            for d in found
            if (not target_arn or d.target.arn == target_arn)
            and (not parent_target_arn or d.parent_target_arn == parent_target_arn)
            and (d.is_latest or not latest_only)
        ]

    def cancel_deployment(self, deployment_id: str) -> list[str]:
        """ACTIVE → CANCELED; pending executions are canceled. Returns the things concerned."""
        with self.lock:
            deployment = self.deployment(deployment_id)
            if deployment.status is not DeploymentStatus.ACTIVE:
                raise ConflictException(
                    f"Deployment {deployment_id} is {deployment.status} and cannot be canceled",
                    deployment_id,
                    "DEPLOYMENT",
                )
            deployment.status = DeploymentStatus.CANCELED
            deployment.job_updated = self.clock()
            touched = self.executions.end(
                deployment_id, ExecutionStatus.CANCELED, "the deployment was canceled", self.clock()
            )
            self.save()
        return touched

    def delete_deployment(self, deployment_id: str) -> None:
        with self.lock:
            deployment = self.deployment(deployment_id)
            if deployment.status is DeploymentStatus.ACTIVE:
                raise ConflictException(
                    "Cancel the deployment before deleting it", deployment_id, "DEPLOYMENT"
                )
            del self.deployments[deployment_id]
            self.executions.forget(deployment_id)
            self.save()

    # -- executions ----------------------------------------------------------------------------
    def reconcile(self, thing: str) -> list[str]:
        """Give a thing the executions of live group deployments it joined after their creation
        (continuous jobs), released as their rollouts allow; the things to notify."""
        with self.lock:
            candidates = [
                d
                for d in self.deployments.values()
                if d.live and d.continuous and self.executions.get(thing, d.deployment_id) is None
            ]
        if not candidates:
            return []
        groups = self.directory.groups_of(thing)  # IoT, outside the lock
        with self.lock:
            added, touched = False, []
            for d in candidates:
                if d.target.name in groups and d.live and self.executions.get(thing, d.deployment_id) is None:
                    self.executions.add(thing, d.deployment_id, d.job_id, self.clock(), released=False)
                    touched += release(d, self.executions, self.clock(), self.minute_s())
                    added = True
            if added:
                self.save()
        return touched

    def leave_group(self, thing: str, group: str) -> list[str]:
        """A thing left a thing group: its executions of the group's continuous jobs that did not
        start become REMOVED (it is no longer a target); one already running goes on."""
        with self.lock:
            touched = []
            for d in self.deployments.values():
                execution = self.executions.get(thing, d.deployment_id)
                queued = execution is not None and execution.status is ExecutionStatus.QUEUED
                if d.continuous and d.target.name == group and queued:
                    execution.move(ExecutionStatus.REMOVED, self.clock(), reason=f"{thing} left {group}")  # type: ignore[union-attr]
                    touched.append(thing)
            if touched:
                self.save()
        return touched

    def job(self, job_id: str) -> tuple[Deployment, list[JobExecution]] | None:
        """The deployment whose IoT job this is and its executions; None for another job."""
        with self.lock:
            found = next((d for d in self.deployments.values() if d.job_id == job_id), None)
            return (found, self.executions.of_deployment(found.deployment_id)) if found else None

    # -- core devices --------------------------------------------------------------------------
    def core_device(self, thing: str) -> CoreDevice:
        with self.lock:
            return self.devices.get(thing)

    def core_devices(self, group: Target | None, status: str | None) -> list[CoreDevice]:
        members = None if group is None else set(self.directory.members(group) or [])
        with self.lock:
            return self.devices.select(members, status)

    def delete_core_device(self, thing: str) -> None:
        with self.lock:
            self.devices.delete(thing)
            self.save()

    def effective_deployments(self, thing: str) -> list[dict[str, Any]]:
        """EffectiveDeployments of a core device, newest deployment first."""
        self.reconcile(thing)
        with self.lock:
            self.devices.get(thing)
            found = [
                effective_deployment(self.deployments[e.deployment_id], e)
                for e in self.executions.of_thing(thing)
                if e.deployment_id in self.deployments
            ]
        return sorted(found, key=lambda e: e["creationTimestamp"], reverse=True)

    # -- what IAM needs to know --------------------------------------------------------------
    def iam_facts(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The IoT resources an operation touches besides the ones its parameters name
        (``iamfacts.py``), for the authorizer's dependent-action checks."""
        return iam_facts(self, operation, params)

    # -- tags ----------------------------------------------------------------------------------
    def tags_of(self, arn: str) -> dict[str, str]:
        with self.lock:
            return dict(self.tags.get(arn, {}))

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        with self.lock:
            self.tags.setdefault(arn, {}).update(tags)
            self.save()

    def untag(self, arn: str, keys: list[str]) -> None:
        with self.lock:
            for key in keys:
                self.tags.get(arn, {}).pop(key, None)
            self.save()
