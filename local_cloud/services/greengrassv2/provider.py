"""The greengrassv2 control plane over HTTP, written natively from botocore's ``greengrassv2`` model.

moto has no Greengrass V2. Requests are matched, parsed and serialized by ``RestJsonService``
from the service model; each operation here is a method named like boto3's (``xform_name``) that
takes the API's member names as keyword arguments, calls the backend (``models.py``) and returns
the output members built from its records. Operations the model has but we do not implement
answer a clear error instead of moto's v1 API. Deployments reach devices through the jobs
transport (``jobs.py``), which the provider starts and tells when a device's next job changed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from botocore import xform_name
from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.greengrassv2 import components as comp
from local_cloud.services.greengrassv2.arns import Arns, Target
from local_cloud.services.greengrassv2.dataplane import JobsDataPlane
from local_cloud.services.greengrassv2.exceptions import ValidationException
from local_cloud.services.greengrassv2.iotjobs import IotJobsApi
from local_cloud.services.greengrassv2.jobs import JobsTransport
from local_cloud.services.greengrassv2.models import GreengrassBackend
from local_cloud.services.greengrassv2.rollout import env_minute_s
from local_cloud.services.greengrassv2.store import StateFile
from local_cloud.services.greengrassv2.things import IotThingDirectory
from local_cloud.services.restjson import RestJsonService, ServiceError

LOG = logging.getLogger(__name__)


def _page(items: list[Any], max_results: int | None, next_token: str | None) -> tuple[list[Any], str | None]:
    start = int(next_token or 0)
    end = start + int(max_results or 100)
    return items[start:end], (str(end) if end < len(items) else None)


class GreengrassV2Provider:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.api = RestJsonService("greengrassv2")
        self.backend = GreengrassBackend(
            Arns(ctx.region, ctx.account_id),
            IotThingDirectory(lambda: ctx.client("iot"), ctx.stopping),
            StateFile(ctx.state_dir / "greengrassv2" / "state.json"),
            minute_s=self._minute_s,
        )
        self.jobs = JobsTransport(JobsDataPlane(self.backend))
        self.iot_jobs = IotJobsApi(self.backend, self.jobs.notify)

    def _minute_s(self) -> float:
        """The local jobs "minute": the admin setting if a test set one, else
        ``MLOPS_EDGE_LOCAL_MINUTE_S`` (default 60 s); see ``rollout.py``."""
        override = self.ctx.extras.get("settings", {}).get("job_timeout_minute_s")
        return float(override) if override else env_minute_s()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        # A version acknowledged (saved REQUESTED) whose artifacts were still being read when the
        # endpoint died is processed again, instead of staying REQUESTED for ever.
        with self.backend.lock:
            pending = [
                record.arn
                for versions in self.backend.components.values()
                for record in versions.values()
                if record.state in (comp.ComponentState.REQUESTED, comp.ComponentState.INITIATED)
            ]
        for arn in pending:
            threading.Thread(target=self._process_component, args=(arn,), daemon=True).start()
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
        # After a restart, tell every known device what it should do next. On a thread: finding a
        # late group member asks IoT through this endpoint, which serves only once start() returns.
        things = self.jobs.plane.things_with_executions()
        threading.Thread(
            target=self.jobs.notify, args=(things,), daemon=True, name="gg-restart-notify"
        ).start()

    def stop(self) -> None:
        self.jobs.close()
        self.backend.save()

    # -- routing -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        if request.path.startswith("/jobs/"):
            return self.iot_jobs.handle(request)  # iot:DescribeJob and co. on a deployment's job
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

    def observe(self, request: Request, status: int) -> None:
        """IoT calls moto served: thing-group membership changes reach continuous deployments."""
        self.iot_jobs.observe(request, status)

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
        record, created = self.backend.create_component_version(recipe, tags, clientToken)
        answer = record.created_summary()
        if created:
            threading.Thread(target=self._process_component, args=(record.arn,), daemon=True).start()
        return answer

    def _process_component(self, arn: str) -> None:
        time.sleep(0.05)  # let the caller see REQUESTED first, as the service's own queue does
        self.backend.process_component(arn, self._fetch_s3)

    def _fetch_s3(self, uri: str) -> bytes:
        bucket, _, key = uri[5:].partition("/")
        return self.ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def describe_component(self, arn: str) -> dict[str, Any]:
        return {**self.backend.component_version(arn).to_dict(), "tags": self.backend.tags_of(arn)}

    def get_component(self, arn: str, recipeOutputFormat: str = "JSON") -> dict[str, Any]:
        record = self.backend.component_version(arn)
        return {
            "recipeOutputFormat": recipeOutputFormat,
            "recipe": comp.render_recipe(record.recipe, recipeOutputFormat),
            "tags": self.backend.tags_of(arn),
        }

    def list_component_versions(
        self, arn: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        items = [r.version_summary() for r in self.backend.component_versions(arn)]
        page, token = _page(items, maxResults, nextToken)
        return {"componentVersions": page, "nextToken": token}

    def list_components(
        self, scope: str | None = None, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        latest = [] if scope == "PUBLIC" else self.backend.latest_components()
        items = [
            {
                "arn": self.backend.arns.component(r.name),
                "componentName": r.name,
                "latestVersion": r.latest_version(),
            }
            for r in latest
        ]
        page, token = _page(items, maxResults, nextToken)
        return {"components": page, "nextToken": token}

    def delete_component(self, arn: str) -> dict[str, Any]:
        self.backend.delete_component(arn)
        return {}

    def resolve_component_candidates(
        self, platform: dict[str, Any] | None = None, componentCandidates: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        resolved = self.backend.resolve_candidates(componentCandidates or [])
        return {
            "resolvedComponentVersions": [
                {
                    "arn": r.arn,
                    "componentName": r.name,
                    "componentVersion": r.version,
                    "recipe": comp.render_recipe(r.recipe, "JSON"),
                    "vendorGuidance": "ACTIVE",
                    "message": "",
                }
                for r in resolved
            ]
        }

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
        deployment, touched = self.backend.create_deployment(
            Target.parse(targetArn),
            name=deploymentName,
            components=components,
            job_configuration=iotJobConfiguration,
            policies=deploymentPolicies,
            parent_target_arn=parentTargetArn,
            tags=tags,
            client_token=clientToken,
        )
        self.jobs.notify(touched)
        return {
            "deploymentId": deployment.deployment_id,
            "iotJobId": deployment.job_id,
            "iotJobArn": deployment.job_arn,
        }

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        deployment = self.backend.deployment(deploymentId)
        tags = self.backend.tags_of(self.backend.arns.deployment(deploymentId))
        return {**deployment.to_dict(), "tags": tags}

    def list_deployments(
        self,
        targetArn: str | None = None,
        historyFilter: str | None = None,
        parentTargetArn: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        if targetArn:
            Target.parse(targetArn)
        latest_only = (historyFilter or "LATEST_ONLY") == "LATEST_ONLY"
        found = self.backend.list_deployments(targetArn, parentTargetArn, latest_only)
        page, token = _page([d.summary() for d in found], maxResults, nextToken)
        return {"deployments": page, "nextToken": token}

    def cancel_deployment(self, deploymentId: str) -> dict[str, Any]:
        self.jobs.notify(self.backend.cancel_deployment(deploymentId))
        return {"message": f"Deployment {deploymentId} canceled"}

    def delete_deployment(self, deploymentId: str) -> dict[str, Any]:
        self.backend.delete_deployment(deploymentId)
        return {}

    # -- core devices --------------------------------------------------------------------------
    def list_effective_deployments(
        self, coreDeviceThingName: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        items = self.backend.effective_deployments(coreDeviceThingName)
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
        group = Target.parse(thingGroupArn) if thingGroupArn else None
        devices = self.backend.core_devices(group, status)
        page, token = _page([d.summary() for d in devices], maxResults, nextToken)
        return {"coreDevices": page, "nextToken": token}

    def get_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        return {**self.backend.core_device(coreDeviceThingName).to_dict(), "tags": {}}

    def list_installed_components(
        self,
        coreDeviceThingName: str,
        topologyFilter: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        installed = self.backend.core_device(coreDeviceThingName).components
        if (topologyFilter or "ROOT") == "ROOT":
            installed = [c for c in installed if c.is_root]
        page, token = _page([c.to_dict() for c in installed], maxResults, nextToken)
        return {"installedComponents": page, "nextToken": token}

    def delete_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        self.backend.delete_core_device(coreDeviceThingName)
        return {}

    # -- tags ----------------------------------------------------------------------------------
    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        return {"tags": self.backend.tags_of(resourceArn)}

    def tag_resource(self, resourceArn: str, tags: dict[str, str]) -> dict[str, Any]:
        self.backend.tag(resourceArn, tags)
        return {}

    def untag_resource(self, resourceArn: str, tagKeys: list[str]) -> dict[str, Any]:
        self.backend.untag(resourceArn, tagKeys)
        return {}
