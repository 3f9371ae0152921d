"""What the console reads and changes, through boto3 with the standard AWS environment.

Plain blocking methods: the web layer runs each in a worker thread. Clients come from an injected
factory (``pipeline.aws.client`` by default), so the same code talks to the local cloud or to an
AWS account, and a test can hand in stubs. AWS errors become :class:`ConsoleError` with AWS's own
code and message, and the HTTP status the page shows them with.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from mlops_edge.console.graph import asl_graph
from pipeline.config import schema

__all__ = ["Backend", "ConsoleError", "input_problems"]

ClientFactory = Callable[[str], Any]
#: How long the fleet snapshot (core devices, their components and deployments) is reused: the
#: Models and Devices pages both read it, and 50 devices are 100 calls.
FLEET_TTL_S = 3.0


class ConsoleError(Exception):
    """A problem to show on the page: a message and the HTTP status it goes back with."""

    def __init__(self, message: str, status: int = 400, *, code: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
        code = str(err.get("Code", "Error"))
        raise ConsoleError(f"{code}: {err.get('Message', exc)}", status, code=code) from exc
    except BotoCoreError as exc:
        raise ConsoleError(f"AWS is not reachable: {exc}", 502) from exc


def input_problems(document: Any) -> list[dict[str, str]]:
    """Every way ``document`` breaks the execution input schema, each at its JSON path.

    The same schema and validator class as ``pipeline.config.validation.validate`` (which the
    Configure handler runs), returned as a list so the page can show each at its path.
    """
    import jsonschema

    if not isinstance(document, dict):
        return [{"path": "$", "message": f"the input must be a JSON object, not {type(document).__name__}"}]
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [{"path": e.json_path, "message": e.message} for e in errors]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _duration(start: Any, stop: Any) -> float | None:
    if not isinstance(start, datetime):
        return None
    end = stop if isinstance(stop, datetime) else datetime.now(start.tzinfo)
    return round((end - start).total_seconds(), 3)


class Backend:
    """Executions, the registry and the fleet, as JSON-ready dicts."""

    def __init__(
        self,
        client: ClientFactory,
        *,
        find_state_machine: Callable[[Any], str],
        model_package_group: str,
        component_prefix: str,
        find_bucket: Callable[[Any], str] | None = None,
        state_prefix: str = "state/",
    ) -> None:
        self._client_factory = client
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._find_state_machine = find_state_machine
        self._state_machine: str | None = None
        self.model_package_group = model_package_group
        self.component_prefix = component_prefix
        self._fleet: tuple[float, list[dict[str, Any]]] | None = None
        #: The pipeline's bucket from its CloudFormation client (the stack's output), for Monitoring.
        self._find_bucket = find_bucket
        self._bucket: str | None = None
        self.state_prefix = state_prefix

    def client(self, service: str) -> Any:
        with self._lock:  # boto3 clients are thread-safe; creating them is not
            if service not in self._clients:
                self._clients[service] = self._client_factory(service)
            return self._clients[service]

    # -- executions --------------------------------------------------------------------------------
    def state_machine_arn(self) -> str:
        if self._state_machine is None:
            try:
                with aws_errors():
                    self._state_machine = self._find_state_machine(self.client("stepfunctions"))
            except ConsoleError:
                raise
            except Exception as exc:  # the lookup's own "nothing deployed" message
                raise ConsoleError(str(getattr(exc, "message", exc)), 404) from exc
        return self._state_machine

    def list_executions(self, max_items: int = 100) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        arn = self.state_machine_arn()
        with aws_errors():
            items = sfn.list_executions(stateMachineArn=arn, maxResults=max_items)["executions"]
        return {
            "state_machine_arn": arn,
            "executions": [
                {
                    "name": e["name"],
                    "arn": e["executionArn"],
                    "status": e["status"],
                    "started": _iso(e.get("startDate")),
                    "stopped": _iso(e.get("stopDate")),
                    "duration_s": _duration(e.get("startDate"), e.get("stopDate")),
                }
                for e in items
            ],
        }

    def start_execution(self, document: Any, name: str | None = None) -> dict[str, Any]:
        problems = input_problems(document)
        if problems:
            raise ConsoleError("the input does not match the input schema", 400, details=problems)
        name = name or time.strftime("console-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
        with aws_errors():
            started = self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn(), name=name, input=json.dumps(document)
            )
        return {"arn": started["executionArn"], "name": name}

    def stop_execution(self, arn: str) -> dict[str, Any]:
        with aws_errors():
            self.client("stepfunctions").stop_execution(
                executionArn=arn, error="Stopped", cause="stopped from mlops-edge console"
            )
        return {"arn": arn, "stopped": True}

    def describe_execution(self, arn: str) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        with aws_errors():
            desc = sfn.describe_execution(executionArn=arn)
            machine = sfn.describe_state_machine_for_execution(executionArn=arn)
        definition = json.loads(machine["definition"])
        return {
            "arn": arn,
            "name": desc["name"],
            "status": desc["status"],
            "state_machine_arn": desc["stateMachineArn"],
            "started": _iso(desc.get("startDate")),
            "stopped": _iso(desc.get("stopDate")),
            "duration_s": _duration(desc.get("startDate"), desc.get("stopDate")),
            "input": desc.get("input"),
            "output": desc.get("output"),
            "error": desc.get("error"),
            "cause": desc.get("cause"),
            "graph": asl_graph(definition),
        }

    def bucket(self) -> str:
        """The pipeline's artifact bucket, looked up once (the drift reports live in it)."""
        if self._bucket is None:
            if self._find_bucket is None:
                raise ConsoleError(
                    "this console was started without a way to find the pipeline's bucket", 404
                )
            try:
                with aws_errors():
                    self._bucket = self._find_bucket(self.client("cloudformation"))
            except ConsoleError:
                raise
            except Exception as exc:  # the lookup's own "nothing deployed" message
                raise ConsoleError(str(getattr(exc, "message", exc)), 404) from exc
        return self._bucket

    # -- registry ----------------------------------------------------------------------------------
    def list_models(self) -> dict[str, Any]:
        sagemaker = self.client("sagemaker")
        group = self.model_package_group
        if not self._group_exists(sagemaker, group):
            return {"group": group, "models": [], "note": f"no model package group {group} yet"}
        with aws_errors():
            summaries = [
                s
                for page in sagemaker.get_paginator("list_model_packages").paginate(
                    ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
                )
                for s in page["ModelPackageSummaryList"]
            ]
            packages = [
                sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries
            ]
        fleet = self.fleet()
        models = [self._model(p, fleet) for p in packages]
        return {"group": group, "models": models}

    @staticmethod
    def _group_exists(sagemaker: Any, group: str) -> bool:
        from botocore.exceptions import ClientError

        with aws_errors():
            try:
                sagemaker.describe_model_package_group(ModelPackageGroupName=group)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
                    return False
                raise
        return True

    def _model(self, package: dict[str, Any], fleet: list[dict[str, Any]]) -> dict[str, Any]:
        version = int(package.get("ModelPackageVersion") or 0)
        metadata = package.get("CustomerMetadataProperties") or {}
        stats = self._statistics(package)
        component = f"{self.component_prefix}.Model"
        deployed = []
        for device in fleet:
            for c in device["components"]:
                if c["name"] == component and c["version"].rsplit(".", 1)[-1] == str(version):
                    deployed.append({"thing": device["thing"], "version": c["version"], "state": c["state"]})
        return {
            "arn": package["ModelPackageArn"],
            "version": version,
            "status": package.get("ModelPackageStatus"),
            "approval": package.get("ModelApprovalStatus"),
            "approval_description": package.get("ApprovalDescription"),
            "created": _iso(package.get("CreationTime")),
            "description": package.get("ModelPackageDescription"),
            "task": metadata.get("task") or stats.get("task"),
            "metrics": stats.get("metrics") or {},
            "parity": stats.get("parity") or {},
            "onnx_uri": metadata.get("onnx_uri"),
            "onnx_sha256": metadata.get("onnx_sha256"),
            "execution": metadata.get("execution"),
            "component": {"name": component, "version": f"1.0.{version}"},
            "deployed_on": deployed,
        }

    def _statistics(self, package: dict[str, Any]) -> dict[str, Any]:
        uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get(
            "S3Uri"
        )
        if not uri or not uri.startswith("s3://"):
            return {}
        bucket, _, key = uri[5:].partition("/")
        try:
            body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            return dict(json.loads(body))
        except Exception:  # metrics that cannot be read are shown as missing, not as an error
            return {}

    def set_approval(self, arn: str, status: str, description: str = "") -> dict[str, Any]:
        if status not in ("Approved", "Rejected"):
            raise ConsoleError(f"approval status must be Approved or Rejected, not {status!r}")
        request: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if description:
            request["ApprovalDescription"] = description[:1024]
        # The status alone, as a person approves in Studio or the CLI: UpdateModelPackage keeps the
        # package's metadata (its ONNX links, which the deploy-only execution reads) on AWS and on
        # the local cloud alike (local_cloud/services/sagemaker/model_packages.py).
        with aws_errors():
            self.client("sagemaker").update_model_package(**request)
        return {"arn": arn, "approval": status}

    # -- fleet -------------------------------------------------------------------------------------
    def fleet(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """Core devices with health, installed components and effective deployments (cached briefly)."""
        cached = self._fleet
        if cached and not fresh and time.monotonic() - cached[0] < FLEET_TTL_S:
            return cached[1]
        from concurrent.futures import ThreadPoolExecutor

        gg = self.client("greengrassv2")
        with aws_errors():
            cores = [
                c for page in gg.get_paginator("list_core_devices").paginate() for c in page["coreDevices"]
            ]
            # two calls per device, eight devices at a time: 50 devices in a few round trips
            with ThreadPoolExecutor(max_workers=8) as pool:
                devices = list(pool.map(lambda core: self._device(gg, core), cores))
        self._fleet = (time.monotonic(), devices)
        return devices

    def _device(self, gg: Any, core: dict[str, Any]) -> dict[str, Any]:
        thing = core["coreDeviceThingName"]
        installed = gg.list_installed_components(coreDeviceThingName=thing).get("installedComponents", [])
        effective = gg.list_effective_deployments(coreDeviceThingName=thing).get("effectiveDeployments", [])
        components = [
            {
                "name": c["componentName"],
                "version": c["componentVersion"],
                "state": c.get("lifecycleState"),
                "details": c.get("lifecycleStateDetails") or ", ".join(c.get("lifecycleStatusCodes") or []),
            }
            for c in installed
        ]
        model = next((c for c in components if c["name"] == f"{self.component_prefix}.Model"), None)
        return {
            "thing": thing,
            "status": core.get("status"),
            "last_status": _iso(core.get("lastStatusUpdateTimestamp")),
            "model_version": model["version"] if model else None,
            "components": components,
            "deployments": [
                {
                    "id": d["deploymentId"],
                    "name": d.get("deploymentName"),
                    "status": d.get("coreDeviceExecutionStatus"),
                    "reason": d.get("reason")
                    or (d.get("statusDetails") or {}).get("detailedDeploymentStatus"),
                    "failure": ", ".join((d.get("statusDetails") or {}).get("errorTypes") or []),
                    "modified": _iso(d.get("modifiedTimestamp")),
                }
                for d in effective
            ],
        }
