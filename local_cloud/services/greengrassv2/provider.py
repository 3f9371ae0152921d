"""The greengrassv2 control plane, written natively from botocore's ``greengrassv2`` model.

moto has no Greengrass V2. Requests are matched, parsed and serialized by ``RestJsonService``
from the service model; each operation here is a method named like boto3's (``xform_name``) that
takes the API's member names as keyword arguments and returns the output members as a dict.
Operations the model has but we do not implement answer a clear error instead of moto's v1 API.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from botocore import xform_name
from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.greengrassv2 import components as comp
from local_cloud.services.greengrassv2.exceptions import (
    ConflictException,
    ResourceNotFoundException,
    ValidationException,
)
from local_cloud.services.greengrassv2.jobs import JobService
from local_cloud.services.greengrassv2.models import GreengrassState, parse_component_arn, parse_target_arn
from local_cloud.services.restjson import RestJsonService, ServiceError

LOG = logging.getLogger(__name__)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """Drop our private bookkeeping keys (prefixed with ``_``)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    start = int(next_token or 0)
    size = int(max_results or 100)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class GreengrassV2Provider:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.api = RestJsonService("greengrassv2")
        self.state = GreengrassState(ctx.state_dir / "greengrassv2" / "state.json")
        self.jobs = JobService(
            self.state,
            self._members_of,
            lambda: float(ctx.extras.get("settings", {}).get("job_timeout_minute_s", 60.0)),
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        broker = self.ctx.extras.get("broker")
        if broker is None:
            return
        ident = broker.control_plane
        self.jobs.connect(
            "127.0.0.1",
            broker.port,
            str(ident.ca_path),
            str(ident.cert_path),
            str(ident.key_path),
            "mlops-edge-control-plane",
        )
        # after a restart, tell every known device what it should do next
        for thing in list(self.state.executions):
            self.jobs.notify(thing)

    def stop(self) -> None:
        self.jobs.close()
        self.state.save()

    # -- routing -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        if not request.path.startswith("/greengrass/v2/") and not self._our_tags(request):
            return None
        matched = self.api.match(request)
        if matched is None:
            return None
        op, labels = matched
        try:
            params = self.api.parse(op, labels, request)
            method = getattr(self, xform_name(op.name), None)
            if method is None:
                raise ServiceError("ValidationException", f"{op.name} is not implemented by the local cloud")
            result = method(**params)
        except ServiceError as exc:
            return self.api.error(exc)
        return self.api.serialize(op, result or {})

    @staticmethod
    def _our_tags(request: Request) -> bool:
        """Tag operations on greengrass ARNs of v2 resources (components, deployments, devices)."""
        path = request.path
        return (
            path.startswith("/tags/arn:")
            and ":greengrass:" in path
            and any(f":{kind}:" in path for kind in ("components", "deployments", "coreDevices"))
        )

    # -- helpers -------------------------------------------------------------------------------
    def _members_of(self, kind: str, name: str) -> list[str]:
        from moto.iot.models import iot_backends

        backend = iot_backends[self.ctx.account_id][self.ctx.region]
        if kind == "thing":
            return [name] if name in {t.thing_name for t in backend.things.values()} else []
        try:
            return [t.thing_name for t in backend.list_things_in_thing_group(name)]
        except Exception:
            return []

    def _component_arn(self, name: str, version: str | None = None) -> str:
        base = f"arn:aws:greengrass:{self.ctx.region}:{self.ctx.account_id}:components:{name}"
        return f"{base}:versions:{version}" if version else base

    def _version(self, arn: str) -> dict[str, Any]:
        name, version = parse_component_arn(arn, need_version=True)
        record = self.state.components.get(name, {}).get(version or "")
        if record is None:
            raise ResourceNotFoundException(f"Component version {arn} not found", arn, "COMPONENT_VERSION")
        return record

    def _fetch_s3(self, uri: str) -> bytes:
        bucket, _, key = uri[5:].partition("/")
        return self.ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    # -- components ----------------------------------------------------------------------------
    def create_component_version(
        self,
        inlineRecipe: bytes | None = None,
        lambdaFunction: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        clientToken: str | None = None,
    ) -> dict[str, Any]:
        if lambdaFunction is not None or inlineRecipe is None:
            raise ValidationException("Only inlineRecipe is supported by the local cloud", reason="OTHER")
        recipe = comp.parse_recipe(inlineRecipe)
        name, version = recipe["ComponentName"], recipe["ComponentVersion"]
        arn = self._component_arn(name, version)
        with self.state.lock:
            if clientToken and self.state.client_tokens.get(clientToken) == arn:
                record = self.state.components[name][version]
                return {
                    k: record[k]
                    for k in ("arn", "componentName", "componentVersion", "creationTimestamp", "status")
                }
            if version in self.state.components.get(name, {}):
                raise ConflictException(
                    f"Component {name} version {version} already exists", arn, "COMPONENT_VERSION"
                )
            platforms = [
                {
                    "name": (m.get("Platform") or {}).get("os", "all"),
                    "attributes": {str(k): str(v) for k, v in (m.get("Platform") or {}).items()},
                }
                for m in recipe.get("Manifests") or []
            ]
            record = {
                "arn": arn,
                "componentName": name,
                "componentVersion": version,
                "creationTimestamp": time.time(),
                "publisher": str(recipe.get("ComponentPublisher", "")),
                "description": str(recipe.get("ComponentDescription", "")),
                "platforms": platforms,
                "status": {
                    "componentState": "REQUESTED",
                    "message": "NONE",
                    "errors": {},
                    "vendorGuidance": "ACTIVE",
                    "vendorGuidanceMessage": "",
                },
                "_recipe": recipe,
            }
            self.state.components.setdefault(name, {})[version] = record
            if clientToken:
                self.state.client_tokens[clientToken] = arn
            if tags:
                self.state.tags[arn] = dict(tags)
            self.state.save()
            response = {
                k: record[k] for k in ("arn", "componentName", "componentVersion", "creationTimestamp")
            }
            response["status"] = dict(record["status"])
        threading.Thread(target=self._process_component, args=(name, version), daemon=True).start()
        return response

    def _process_component(self, name: str, version: str) -> None:
        """REQUESTED → INITIATED → DEPLOYABLE, or FAILED when an artifact cannot be read."""
        time.sleep(0.05)
        with self.state.lock:
            record = self.state.components[name][version]
            record["status"]["componentState"] = "INITIATED"
            recipe = record["_recipe"]
        errors = comp.fill_digests(recipe, self._fetch_s3)
        with self.state.lock:
            if errors:
                record["status"].update(
                    componentState="FAILED", message="; ".join(errors.values()), errors=errors
                )
            else:
                record["status"].update(componentState="DEPLOYABLE", message="NONE", errors={})
            self.state.save()

    def describe_component(self, arn: str) -> dict[str, Any]:
        with self.state.lock:
            record = self._version(arn)
            return {**_public(record), "tags": self.state.tags.get(arn, {})}

    def get_component(self, arn: str, recipeOutputFormat: str = "JSON") -> dict[str, Any]:
        with self.state.lock:
            record = self._version(arn)
            return {
                "recipeOutputFormat": recipeOutputFormat,
                "recipe": comp.render_recipe(record["_recipe"], recipeOutputFormat),
                "tags": self.state.tags.get(arn, {}),
            }

    def list_component_versions(
        self, arn: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        name, version = parse_component_arn(arn, need_version=False)
        if version:
            raise ValidationException(f"{arn} is a component version ARN; give the component ARN")
        with self.state.lock:
            versions = self.state.components.get(name)
            if not versions:
                raise ResourceNotFoundException(f"Component {arn} not found", arn, "COMPONENT")
            ordered = sorted(versions.values(), key=lambda r: r["creationTimestamp"], reverse=True)
            items = [
                {
                    "componentName": r["componentName"],
                    "componentVersion": r["componentVersion"],
                    "arn": r["arn"],
                }
                for r in ordered
            ]
        page, token = _page(items, maxResults, nextToken)
        return {"componentVersions": page, "nextToken": token}

    def list_components(
        self, scope: str | None = None, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        items = []
        if scope != "PUBLIC":
            with self.state.lock:
                for name in sorted(self.state.components):
                    versions = self.state.components[name]
                    if not versions:
                        continue
                    latest = comp.choose_version(list(versions), None, []) or next(iter(versions))
                    r = versions[latest]
                    items.append(
                        {
                            "arn": self._component_arn(name),
                            "componentName": name,
                            "latestVersion": {
                                "arn": r["arn"],
                                "componentVersion": r["componentVersion"],
                                "creationTimestamp": r["creationTimestamp"],
                                "description": r["description"],
                                "publisher": r["publisher"],
                                "platforms": r["platforms"],
                            },
                        }
                    )
        page, token = _page(items, maxResults, nextToken)
        return {"components": page, "nextToken": token}

    def delete_component(self, arn: str) -> dict[str, Any]:
        with self.state.lock:
            record = self._version(arn)
            del self.state.components[record["componentName"]][record["componentVersion"]]
            if not self.state.components[record["componentName"]]:
                del self.state.components[record["componentName"]]
            self.state.tags.pop(arn, None)
            self.state.save()
        return {}

    def resolve_component_candidates(
        self, platform: dict[str, Any] | None = None, componentCandidates: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        resolved = []
        with self.state.lock:
            for candidate in componentCandidates or []:
                name = candidate.get("componentName", "")
                requested = candidate.get("componentVersion")
                requirements = list((candidate.get("versionRequirements") or {}).values())
                deployable = {
                    v: r
                    for v, r in self.state.components.get(name, {}).items()
                    if r["status"]["componentState"] == "DEPLOYABLE"
                }
                version = comp.choose_version(list(deployable), requested, requirements)
                if version is None:
                    wanted = requested or " ".join(requirements) or "any"
                    raise ResourceNotFoundException(
                        f"No deployable version of {name} satisfies {wanted} (requirements: {requirements})",
                        self._component_arn(name),
                        "COMPONENT",
                    )
                record = deployable[version]
                resolved.append(
                    {
                        "arn": record["arn"],
                        "componentName": name,
                        "componentVersion": version,
                        "recipe": comp.render_recipe(record["_recipe"], "JSON"),
                        "vendorGuidance": "ACTIVE",
                        "message": "",
                    }
                )
        return {"resolvedComponentVersions": resolved}

    # -- deployments ---------------------------------------------------------------------------
    def create_deployment(
        self,
        targetArn: str,
        deploymentName: str | None = None,
        components: dict[str, Any] | None = None,
        iotJobConfiguration: dict[str, Any] | None = None,
        deploymentPolicies: dict[str, Any] | None = None,
        parentTargetArn: str | None = None,
        tags: dict[str, str] | None = None,
        clientToken: str | None = None,
    ) -> dict[str, Any]:
        kind, target = parse_target_arn(targetArn)
        components = components or {}
        with self.state.lock:
            if clientToken and clientToken in self.state.client_tokens:
                existing = self.state.deployments[self.state.client_tokens[clientToken]]
                return {k: existing[k] for k in ("deploymentId", "iotJobId", "iotJobArn")}
        from moto.iot.models import iot_backends

        backend = iot_backends[self.ctx.account_id][self.ctx.region]
        if kind == "thinggroup" and target not in {g.thing_group_name for g in backend.thing_groups.values()}:
            raise ResourceNotFoundException(f"Thing group {target} not found", targetArn, "THING_GROUP")
        if kind == "thing" and not self._members_of("thing", target):
            raise ResourceNotFoundException(f"Thing {target} not found", targetArn, "THING")
        with self.state.lock:
            for name, spec in components.items():
                if name.startswith("aws.greengrass."):
                    continue  # public components are not stored locally
                version = spec.get("componentVersion")
                record = self.state.components.get(name, {}).get(version or "")
                if record is None:
                    raise ResourceNotFoundException(
                        f"Component {name} version {version} not found",
                        self._component_arn(name, version),
                        "COMPONENT_VERSION",
                    )
                if record["status"]["componentState"] != "DEPLOYABLE":
                    raise ValidationException(
                        f"Component {name} version {version} is {record['status']['componentState']}, not DEPLOYABLE"
                    )
            policies = self._policies(deploymentPolicies)
            revision = self.state.revisions.get(targetArn, 0) + 1
            self.state.revisions[targetArn] = revision
            deployment_id = str(uuid.uuid4())
            job_id = str(uuid.uuid4())
            now = time.time()
            group = f"{kind}/{target}"
            document = {
                "deploymentId": deployment_id,
                "configurationArn": f"arn:aws:greengrass:{self.ctx.region}:{self.ctx.account_id}:configuration:{group}:{revision}",
                "groupName": group,
                "creationTimestamp": int(now * 1000),
                "components": {
                    name: {
                        "version": spec.get("componentVersion"),
                        "configurationUpdate": spec.get("configurationUpdate") or {},
                        "runWith": spec.get("runWith") or {},
                    }
                    for name, spec in components.items()
                },
                "failureHandlingPolicy": policies["failureHandlingPolicy"],
                "componentUpdatePolicy": {
                    "timeout": policies["componentUpdatePolicy"]["timeoutInSeconds"],
                    "action": policies["componentUpdatePolicy"]["action"],
                },
                "configurationValidationPolicy": {
                    "timeoutInSeconds": policies["configurationValidationPolicy"]["timeoutInSeconds"]
                },
                "requiredCapabilities": [],
            }
            deployment = {
                "targetArn": targetArn,
                "revisionId": str(revision),
                "deploymentId": deployment_id,
                "deploymentName": deploymentName or f"Deployment for {target}",
                "deploymentStatus": "ACTIVE",
                "iotJobId": job_id,
                "iotJobArn": f"arn:aws:iot:{self.ctx.region}:{self.ctx.account_id}:job/{job_id}",
                "components": components,
                "deploymentPolicies": policies,
                "iotJobConfiguration": iotJobConfiguration or {},
                "creationTimestamp": now,
                "isLatestForTarget": True,
                "parentTargetArn": parentTargetArn,
                "jobDocument": document,
                "_targetKind": kind,
                "_targetName": target,
            }
            self.state.deployments[deployment_id] = deployment
            if tags:
                self.state.tags[self._deployment_arn(deployment_id)] = dict(tags)
            if clientToken:
                self.state.client_tokens[clientToken] = deployment_id
            touched = set(self.jobs.supersede(targetArn, deployment_id))
            for thing in self._members_of(kind, target):
                self.jobs.add_execution(thing, deployment)
                touched.add(thing)
            self.state.save()
        for thing in sorted(touched):
            self.jobs.notify(thing)
        return {"deploymentId": deployment_id, "iotJobId": job_id, "iotJobArn": deployment["iotJobArn"]}

    @staticmethod
    def _policies(given: dict[str, Any] | None) -> dict[str, Any]:
        given = given or {}
        update = given.get("componentUpdatePolicy") or {}
        validation = given.get("configurationValidationPolicy") or {}
        return {
            "failureHandlingPolicy": given.get("failureHandlingPolicy", "ROLLBACK"),
            "componentUpdatePolicy": {
                "timeoutInSeconds": int(update.get("timeoutInSeconds", 60)),
                "action": update.get("action", "NOTIFY_COMPONENTS"),
            },
            "configurationValidationPolicy": {
                "timeoutInSeconds": int(validation.get("timeoutInSeconds", 30))
            },
        }

    def _deployment_arn(self, deployment_id: str) -> str:
        return f"arn:aws:greengrass:{self.ctx.region}:{self.ctx.account_id}:deployments:{deployment_id}"

    def _deployment(self, deployment_id: str) -> dict[str, Any]:
        deployment = self.state.deployments.get(deployment_id)
        if deployment is None:
            raise ResourceNotFoundException(
                f"Deployment {deployment_id} not found", deployment_id, "DEPLOYMENT"
            )
        return deployment

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        with self.state.lock:
            deployment = _public(self._deployment(deploymentId))
            deployment.pop("jobDocument", None)
            return {**deployment, "tags": self.state.tags.get(self._deployment_arn(deploymentId), {})}

    def list_deployments(
        self,
        targetArn: str | None = None,
        historyFilter: str | None = None,
        parentTargetArn: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        if targetArn:
            parse_target_arn(targetArn)
        with self.state.lock:
            items = sorted(
                self.state.deployments.values(), key=lambda d: d["creationTimestamp"], reverse=True
            )
        if targetArn:
            items = [d for d in items if d["targetArn"] == targetArn]
        if parentTargetArn:
            items = [d for d in items if d.get("parentTargetArn") == parentTargetArn]
        if (historyFilter or "LATEST_ONLY") == "LATEST_ONLY":
            items = [d for d in items if d["isLatestForTarget"]]
        keys = (
            "targetArn",
            "revisionId",
            "deploymentId",
            "deploymentName",
            "creationTimestamp",
            "deploymentStatus",
            "isLatestForTarget",
            "parentTargetArn",
        )
        page, token = _page([{k: d.get(k) for k in keys} for d in items], maxResults, nextToken)
        return {"deployments": page, "nextToken": token}

    def cancel_deployment(self, deploymentId: str) -> dict[str, Any]:
        with self.state.lock:
            deployment = self._deployment(deploymentId)
            if deployment["deploymentStatus"] != "ACTIVE":
                raise ConflictException(
                    f"Deployment {deploymentId} is {deployment['deploymentStatus']} and cannot be canceled",
                    deploymentId,
                    "DEPLOYMENT",
                )
            deployment["deploymentStatus"] = "CANCELED"
            touched = self.jobs.cancel(deploymentId)
            self.state.save()
        for thing in touched:
            self.jobs.notify(thing)
        return {"message": f"Deployment {deploymentId} canceled"}

    def delete_deployment(self, deploymentId: str) -> dict[str, Any]:
        with self.state.lock:
            deployment = self._deployment(deploymentId)
            if deployment["deploymentStatus"] == "ACTIVE":
                raise ConflictException(
                    "Cancel the deployment before deleting it", deploymentId, "DEPLOYMENT"
                )
            del self.state.deployments[deploymentId]
            for executions in self.state.executions.values():
                executions.pop(deploymentId, None)
            self.state.save()
        return {}

    # -- core devices --------------------------------------------------------------------------
    def _device(self, thing: str) -> dict[str, Any]:
        device = self.state.core_devices.get(thing)
        if device is None:
            raise ResourceNotFoundException(f"Core device {thing} not found", thing, "CORE_DEVICE")
        return device

    def list_effective_deployments(
        self, coreDeviceThingName: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        self.jobs.reconcile(coreDeviceThingName)
        with self.state.lock:
            self._device(coreDeviceThingName)
            items = []
            for execution in self.state.executions.get(coreDeviceThingName, {}).values():
                d = self.state.deployments.get(execution["deploymentId"])
                if d is None:
                    continue
                details = {
                    k: v
                    for k, v in (execution.get("statusDetails") or {}).items()
                    if v and k in ("errorStack", "errorTypes")
                }
                items.append(
                    {
                        "deploymentId": d["deploymentId"],
                        "deploymentName": d["deploymentName"],
                        "iotJobId": d["iotJobId"],
                        "iotJobArn": d["iotJobArn"],
                        "targetArn": d["targetArn"],
                        "coreDeviceExecutionStatus": execution["status"],
                        "reason": execution.get("reason") or None,
                        "creationTimestamp": d["creationTimestamp"],
                        "modifiedTimestamp": execution["modifiedTimestamp"],
                        "statusDetails": details or None,
                    }
                )
        items.sort(key=lambda e: e["creationTimestamp"], reverse=True)
        page, token = _page(items, maxResults, nextToken)
        return {"effectiveDeployments": page, "nextToken": token}

    def list_core_devices(
        self,
        thingGroupArn: str | None = None,
        status: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
        runtime: str | None = None,
    ) -> dict[str, Any]:
        members: set[str] | None = None
        if thingGroupArn:
            kind, name = parse_target_arn(thingGroupArn)
            members = set(self._members_of(kind, name))
        with self.state.lock:
            devices = [
                d for t, d in sorted(self.state.core_devices.items()) if members is None or t in members
            ]
        if status:
            devices = [d for d in devices if d["status"] == status]
        keys = (
            "coreDeviceThingName",
            "status",
            "lastStatusUpdateTimestamp",
            "platform",
            "architecture",
            "runtime",
        )
        page, token = _page([{k: d.get(k) for k in keys} for d in devices], maxResults, nextToken)
        return {"coreDevices": page, "nextToken": token}

    def get_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        with self.state.lock:
            device = self._device(coreDeviceThingName)
            keys = (
                "coreDeviceThingName",
                "coreVersion",
                "platform",
                "architecture",
                "runtime",
                "status",
                "lastStatusUpdateTimestamp",
            )
            return {**{k: device.get(k) for k in keys}, "tags": {}}

    def list_installed_components(
        self,
        coreDeviceThingName: str,
        topologyFilter: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        with self.state.lock:
            components = list(self._device(coreDeviceThingName)["components"])
        if (topologyFilter or "ROOT") == "ROOT":
            components = [c for c in components if c.get("isRoot")]
        page, token = _page(components, maxResults, nextToken)
        return {"installedComponents": page, "nextToken": token}

    def delete_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        with self.state.lock:
            self._device(coreDeviceThingName)
            del self.state.core_devices[coreDeviceThingName]
            self.state.save()
        return {}

    # -- tags ----------------------------------------------------------------------------------
    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        with self.state.lock:
            return {"tags": dict(self.state.tags.get(resourceArn, {}))}

    def tag_resource(self, resourceArn: str, tags: dict[str, str]) -> dict[str, Any]:
        with self.state.lock:
            self.state.tags.setdefault(resourceArn, {}).update(tags)
            self.state.save()
        return {}

    def untag_resource(self, resourceArn: str, tagKeys: list[str]) -> dict[str, Any]:
        with self.state.lock:
            for key in tagKeys:
                self.state.tags.get(resourceArn, {}).pop(key, None)
            self.state.save()
        return {}
