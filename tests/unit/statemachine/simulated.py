"""A simulated fleet behind the real Lambda cores, for walking the state machine's document.

Every handler the walk calls is the real core from ``lambdas/core`` with its AWS clients replaced:
moto for S3 and STS, small fakes for what moto lacks or what would need a trained model (the
Greengrass control plane, the IoT thing group, SageMaker's model packages, MQTT). Only ExportOnnx
is a stand-in (its core needs a real training job's model): it returns a result of the real
shape and puts the ONNX bytes and manifest the later cores read into S3.

The fleet decides how devices behave: ``healthy`` (half still in progress at the first check, all
succeeded at the second, every golden request answered), ``deploy_fails`` (every device rolls the
deployment back with Greengrass' error stack), ``never_connect`` (no device ever registers as a
core device), ``silent`` (deployed, but no answer over MQTT), ``rollback_fails`` (deploy_fails,
and then the rollback deployment is refused).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from lambdas.core.components import check_components, publish_components
from lambdas.core.configure import configure
from lambdas.core.deployment import check_deployment, deploy
from lambdas.core.promote import promote, rollback
from lambdas.core.registry import register_model
from lambdas.core.rollout import evaluate_stage
from lambdas.core.verify import verify_on_device
from pipeline.config.function_env import Settings
from tests.unit.lambdas.fakes import FakeGreengrass

BUCKET = "mlops-edge-artifacts-123456789012-us-east-1"
GROUP = "mlops-edge-fleet"
PREFIX = "com.example.mlopsedge"
ACCOUNT, REGION = "123456789012", "us-east-1"
ONNX = b"onnx model bytes of the simulated export"
FEATURES = [f"feature_{i}" for i in range(10)]
GOLDEN = {
    "features": FEATURES,
    "task": "regression",
    "rows": [[0.1 * (i + j) for j in range(len(FEATURES))] for i in range(10)],
    "expected": [{"value": 150.0 + i} for i in range(10)],
    "tolerance": {"abs": 1e-5, "rel": 1e-4},
}
MODES = ("healthy", "deploy_fails", "never_connect", "silent", "rollback_fails")


def thing_names(count: int) -> list[str]:
    return [f"mlops-edge-core-device-{i:04d}" for i in range(1, count + 1)]


class FakeIot:
    """The thing groups the cores read: ARN and members (paginated as IoT does, 250 a page).

    One group (the fleet, every thing) unless ``groups`` (name -> members) says otherwise."""

    def __init__(self, things: list[str], groups: dict[str, list[str]] | None = None) -> None:
        self.things = things
        self.groups = groups if groups is not None else {GROUP: things}

    def describe_thing_group(self, thingGroupName: str) -> dict[str, Any]:
        assert thingGroupName in self.groups, thingGroupName
        return {"thingGroupArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{thingGroupName}"}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_things_in_thing_group"
        groups = self.groups

        class Pages:
            def paginate(self, thingGroupName: str, recursive: bool = False) -> list[dict[str, Any]]:
                if thingGroupName not in groups:  # as IoT answers for a group that does not exist
                    from botocore.exceptions import ClientError

                    error = {"Code": "ResourceNotFoundException", "Message": f"{thingGroupName} not found"}
                    raise ClientError({"Error": error}, "ListThingsInThingGroup")
                things = groups[thingGroupName]
                return [{"things": things[i : i + 250]} for i in range(0, max(len(things), 1), 250)]

        return Pages()


class FakeSageMaker:
    """Model packages of one group: created, described, approved."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}

    def create_model_package(self, **request: Any) -> dict[str, str]:
        version = len(self.packages) + 1
        arn = (
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{request['ModelPackageGroupName']}/{version}"
        )
        self.packages[arn] = {
            "ModelPackageArn": arn,
            "ModelPackageVersion": version,
            "ModelApprovalStatus": request["ModelApprovalStatus"],
            "CustomerMetadataProperties": request["CustomerMetadataProperties"],
        }
        return {"ModelPackageArn": arn}

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        return self.packages[ModelPackageName]

    def update_model_package(self, ModelPackageArn: str, **update: Any) -> dict[str, str]:
        self.packages[ModelPackageArn]["ModelApprovalStatus"] = update["ModelApprovalStatus"]
        self.packages[ModelPackageArn]["CustomerMetadataProperties"] = update["CustomerMetadataProperties"]
        return {"ModelPackageArn": ModelPackageArn}


class SimulatedGreengrass(FakeGreengrass):
    """Deployment ids unique across fleets, as Greengrass makes them."""

    def create_deployment(self, **request: Any) -> dict[str, Any]:
        self.deployments.append(request)
        return {"deploymentId": str(uuid.uuid4())}


class RefusingGreengrass(SimulatedGreengrass):
    """Accepts the first deployment and refuses every later one (the rollback)."""

    def create_deployment(self, **request: Any) -> dict[str, Any]:
        if self.deployments:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "thing group is being deleted"}},
                "CreateDeployment",
            )
        return super().create_deployment(**request)


class NullClient:
    def __enter__(self) -> NullClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Fleet:
    """``count`` devices behaving as ``mode`` says, and the handlers of every Lambda state."""

    def __init__(self, count: int, mode: str, s3: Any, sts: Any) -> None:
        assert mode in MODES, mode
        self.things = thing_names(count)
        self.mode = mode
        self.s3, self.sts = s3, sts
        self.iot = FakeIot(self.things)
        self.greengrass = (
            RefusingGreengrass() if mode == "rollback_fails" else SimulatedGreengrass("REQUESTED")
        )
        self.sagemaker = FakeSageMaker()
        self.settings = Settings(
            bucket=BUCKET,
            model_package_group="mlops-edge-models",
            thing_group=GROUP,
            component_prefix=PREFIX,
            sourcedir_uri=f"s3://{BUCKET}/artifacts/training/sourcedir-0123456789abcdef.tar.gz",
        )
        self.checks = 0

    # --- device behaviour ------------------------------------------------------------------

    def _effective(self, thing: str, index: int, deployment_id: str) -> list[dict[str, Any]] | None:
        """The device's ListEffectiveDeployments entry at this check (None: never connected)."""
        if self.mode == "never_connect":
            return None
        if self.mode in ("deploy_fails", "rollback_fails"):
            return [
                {
                    "deploymentId": deployment_id,
                    "coreDeviceExecutionStatus": "FAILED",
                    "reason": (
                        f"Component {PREFIX}.Inference version 1.0.4181 errored 3 times in its startup "
                        "step: exit code 1; the nucleus rolled the deployment back"
                    ),
                    "statusDetails": {
                        "detailedDeploymentStatus": "FAILED_ROLLBACK_COMPLETE",
                        "errorTypes": ["COMPONENT_ERROR"],
                        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"],
                    },
                }
            ]
        done = self.checks > 1 or index % 2 == 1
        return [
            {
                "deploymentId": deployment_id,
                "coreDeviceExecutionStatus": "SUCCEEDED" if done else "IN_PROGRESS",
                "statusDetails": {"detailedDeploymentStatus": "SUCCESSFUL"} if done else {},
            }
        ]

    def exchange(self, client: Any, exchanges: list[Any], **options: Any) -> dict[str, Any]:
        """``request_response_many`` as the fleet answers: the inference component's result."""
        assert options["subscriptions"] == ["edge/+/inference/result"]
        if self.mode == "silent":
            return {}
        version = self.greengrass.deployments[-1]["components"][f"{PREFIX}.Model"]["componentVersion"]
        answers = {}
        for exchange in exchanges:
            for request in exchange.requests:
                row = GOLDEN["rows"].index(request["rows"][0])
                answers[request["id"]] = (
                    {
                        "id": request["id"],
                        "ok": True,
                        "predictions": [GOLDEN["expected"][row]],
                        "model": {"name": f"{PREFIX}.Model", "version": version},
                        "latency_ms": 0.412,
                        "thing": exchange.request_topic.split("/")[1],
                    },
                    1.734,
                )
        return answers

    # --- the handlers ----------------------------------------------------------------------

    def _check_deployment(self, event: dict[str, Any]) -> dict[str, Any]:
        self.checks += 1
        deployment_id = event["deployment"]["deployment_id"]
        self.greengrass.unknown = set()
        for index, thing in enumerate(self.things):
            effective = self._effective(thing, index, deployment_id)
            if effective is None:
                self.greengrass.unknown.add(thing)
            else:
                self.greengrass.effective[thing] = effective
        return check_deployment(event, greengrass=self.greengrass, iot=self.iot, s3=self.s3)

    def _check_components(self, event: dict[str, Any]) -> dict[str, Any]:
        for component in self.greengrass.components.values():
            component["state"] = "DEPLOYABLE"
        return check_components(event, greengrass=self.greengrass)

    def _export_onnx(self, event: dict[str, Any]) -> dict[str, Any]:
        """Stand-in with the real result's shape; puts what the later cores read into S3."""
        config = event["config"]
        job = config["training"]["job_name"]
        digest = hashlib.sha256(ONNX).hexdigest()
        prefix = f"{config['artifact_prefix']}models/{job}/{digest[:16]}/"
        manifest = {"format_version": 1, "task": "regression", "features": FEATURES, "sha256": digest}
        for name, body in (
            ("model.onnx", ONNX),
            ("model.json", json.dumps(manifest).encode()),
            ("golden.json", json.dumps(GOLDEN).encode()),
        ):
            self.s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=body)
        metrics = {
            f"{split}:{m}": 12.345678 for split in ("validation", "onnx") for m in ("rmse", "mae", "r2")
        }
        return {
            "onnx_uri": f"s3://{BUCKET}/{prefix}model.onnx",
            "manifest_uri": f"s3://{BUCKET}/{prefix}model.json",
            "golden_uri": f"s3://{BUCKET}/{prefix}golden.json",
            "sha256": digest,
            "task": "regression",
            "metrics": metrics,
            "parity": {"max_abs_diff": 3.0517578125e-05, "max_rel_diff": 2.1e-07, "rows": 89, "passed": True},
            "quality": {"passed": True, "cause": "validation:rmse=12.35 <= max 70"},
            "training_job": job,
            "model_data_uri": f"s3://{BUCKET}/{config['artifact_prefix']}training/{job}/output/model.tar.gz",
        }

    def lambdas(self) -> dict[str, Callable[[Any], Any]]:
        s3, gg, iot = self.s3, self.greengrass, self.iot
        return {
            "configure": lambda e: configure(e, settings=self.settings, s3=s3),
            "export_onnx": self._export_onnx,
            "register_model": lambda e: register_model(e, sagemaker=self.sagemaker, s3=s3),
            "publish_components": lambda e: publish_components(e, s3=s3, greengrass=gg, sts=self.sts),
            "check_components": self._check_components,
            "deploy": lambda e: deploy(e, greengrass=gg, iot=iot, s3=s3),
            "check_deployment": self._check_deployment,
            "verify_on_device": lambda e: verify_on_device(
                e, s3=s3, connect=NullClient, exchange=self.exchange, time_budget_s=290.0
            ),
            "evaluate_stage": lambda e: evaluate_stage(e, s3=s3),
            "promote": lambda e: promote(e, s3=s3, sagemaker=self.sagemaker),
            "rollback": lambda e: rollback(e, s3=s3, greengrass=gg, iot=iot),
        }

    def services(self) -> dict[str, Callable[[Any], Any]]:
        """SageMaker training through the optimized integration and aws-sdk: one poll in progress."""
        polls = {"n": 0}

        def describe(parameters: dict[str, Any]) -> dict[str, Any]:
            polls["n"] += 1
            done = polls["n"] > 1
            return {
                "TrainingJobName": parameters["TrainingJobName"],
                "TrainingJobStatus": "Completed" if done else "InProgress",
                "SecondaryStatus": "Completed" if done else "Training",
            }

        return {
            "arn:aws:states:::sagemaker:createTrainingJob": lambda p: {
                "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{p['TrainingJobName']}"
            },
            "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob": describe,
        }

    def register_given_model(self) -> str:
        """An Approved package from an earlier run, for the deploy-only input."""
        digest = hashlib.sha256(ONNX).hexdigest()
        prefix = f"artifacts/models/earlier-job/{digest[:16]}/"
        for name, body in (
            ("model.onnx", ONNX),
            ("model.json", b"{}"),
            ("golden.json", json.dumps(GOLDEN).encode()),
        ):
            self.s3.put_object(Bucket=BUCKET, Key=prefix + name, Body=body)
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName="mlops-edge-models",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={
                "onnx_uri": f"s3://{BUCKET}/{prefix}model.onnx",
                "onnx_sha256": digest,
                "manifest_uri": f"s3://{BUCKET}/{prefix}model.json",
                "golden_uri": f"s3://{BUCKET}/{prefix}golden.json",
                "task": "regression",
            },
        )["ModelPackageArn"]
        return arn


def aws_clients() -> tuple[Any, Any]:
    """moto S3 (with the artifact bucket) and STS; call inside ``mock_aws``."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return s3, boto3.client("sts", region_name=REGION)
