"""Publish a built component: artifacts to S3, then CreateComponentVersion, as PublishComponents does.

The artifacts go where the pipeline puts its own (``<artifact prefix>components/<name>/<version>/``
in the pipeline's artifact bucket): that is the one place the devices' token exchange role may read
(``infra/device_identity.py``), so what works on the local cloud works on AWS. The upload and the
component calls are the pipeline's (``lambdas.core.aws.put_immutable``,
``lambdas.core.components``): an immutable key, an existing identical version reused.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core import components as pipeline_components
from lambdas.core import registry
from lambdas.core.aws import put_immutable
from lambdas.core.exceptions import PipelineError
from mlops_edge.environment.component_dev.build import (
    Built,
    ComponentDevError,
    _artifact_entries,
    artifact_file,
)
from pipeline.config.function_env import Settings

#: The pipeline stack's output naming its artifact bucket (infra/pipeline_stack.py).
BUCKET_OUTPUT = "ArtifactBucketName"
COMPONENT_WAIT_S = 60.0


@dataclass(frozen=True)
class Published:
    name: str
    version: str
    arn: str
    reused: bool
    artifact_uris: list[str]


def find_bucket(cloudformation: Any) -> str:
    """The deployed pipeline's artifact bucket (its stack's ``ArtifactBucketName`` output)."""
    found = []
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            for output in stack.get("Outputs") or []:
                if output.get("OutputKey") == BUCKET_OUTPUT:
                    found.append((stack["StackName"], output["OutputValue"]))
    if len(found) == 1:
        return str(found[0][1])
    if not found:
        raise ComponentDevError(
            "no deployed mlops-edge pipeline stack (output ArtifactBucketName) in this account/region: "
            "deploy it (cdk deploy, or `mlops-edge run --keep` locally) or pass --bucket"
        )
    listed = ", ".join(f"{stack} ({bucket})" for stack, bucket in found)
    raise ComponentDevError(f"several pipeline stacks found: {listed}; pass --bucket")


def _upload(s3: Any, bucket: str, built: Built) -> tuple[dict[str, Any], list[str]]:
    """Every artifact to its immutable key; the recipe with its real URIs."""
    recipe = copy.deepcopy(built.recipe)
    prefix = f"{Settings().artifact_prefix}components/{built.name}/{built.version}/"
    uris = []
    for entry in _artifact_entries(recipe):
        file_name = artifact_file(entry["URI"])
        key = prefix + file_name
        try:
            put_immutable(s3, bucket, key, built.artifacts[file_name], content_type="application/zip")
        except PipelineError as exc:
            raise ComponentDevError(str(exc)) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ComponentDevError(
                f"cannot upload s3://{bucket}/{key}: {error.get('Code')}: {error.get('Message')}"
            ) from exc
        entry["URI"] = f"s3://{bucket}/{key}"
        entry.pop("Digest", None)  # Greengrass computes it from the object
        entry.pop("Algorithm", None)
        uris.append(entry["URI"])
    return recipe, uris


def _wait_deployable(greengrass: Any, arn: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = pipeline_components.describe(greengrass, arn) or {"state": "REQUESTED"}
        if status["state"] in ("DEPLOYABLE", "FAILED") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _same_artifacts(greengrass: Any, arn: str, built: Built) -> None:
    """An existing version is reused only with the same artifact bytes: a model directory stamped
    1.0.<n> is not the registry's 1.0.<n> because it says so."""
    import base64
    import hashlib

    recipe = json.loads(greengrass.get_component(arn=arn, recipeOutputFormat="JSON")["recipe"])
    for entry in _artifact_entries(recipe):
        ours = built.artifacts.get(artifact_file(entry["URI"]))
        digest = entry.get("Digest")
        if ours is not None and digest and base64.b64encode(hashlib.sha256(ours).digest()).decode() != digest:
            raise ComponentDevError(
                f"{built.name} {built.version} already exists with other artifact bytes "
                f"({artifact_file(entry['URI'])}); versions are immutable: give this build another version"
            )


def publish(
    built: Built, *, greengrass: Any, s3: Any, sts: Any, bucket: str, wait_s: float = COMPONENT_WAIT_S
) -> Published:
    """Upload, create the component version (or reuse an identical one), wait until DEPLOYABLE.

    The pipeline's helpers raise its typed errors (a TransientError once a call keeps failing):
    here they are the user's one-line error, not a traceback."""
    try:
        return _publish(built, greengrass=greengrass, s3=s3, sts=sts, bucket=bucket, wait_s=wait_s)
    except PipelineError as exc:
        raise ComponentDevError(str(exc)) from exc


def _publish(built: Built, *, greengrass: Any, s3: Any, sts: Any, bucket: str, wait_s: float) -> Published:
    env = pipeline_components._environment(sts, greengrass)
    arn = pipeline_components.component_arn(env, built.name, built.version)
    recipe, uris = _upload(s3, bucket, built)
    reused = pipeline_components.describe(greengrass, arn) is not None
    if not reused:
        try:
            greengrass.create_component_version(inlineRecipe=json.dumps(recipe, sort_keys=True).encode())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ComponentDevError(
                f"Greengrass refused the recipe of {built.name} {built.version}: "
                f"{error.get('Code')}: {error.get('Message')}"
            ) from exc
    else:
        _same_artifacts(greengrass, arn, built)
    status = _wait_deployable(greengrass, arn, wait_s)
    if status["state"] != "DEPLOYABLE":
        detail = status.get("message") or ""
        errors = status.get("errors") or {}
        raise ComponentDevError(
            f"component {built.name} {built.version} is {status['state']}, not DEPLOYABLE: "
            f"{detail} {json.dumps(errors) if errors else ''}".rstrip()
        )
    return Published(built.name, built.version, arn, reused, uris)


def model_package_build(
    arn: str, *, sagemaker: Any, s3: Any, model_name: str, artifact_uri_placeholder: str
) -> Built:
    """The model component of a registered model package, byte for byte what PublishComponents
    builds for it (model.onnx checked against the registry's digest, model.json stamped)."""
    from components import build

    try:
        found = registry.resolve({"model_package_arn": arn, "auto_approve": True}, sagemaker)
    except PipelineError as exc:
        raise ComponentDevError(str(exc)) from exc
    version = build.model_version(int(found["model_package_version"]))
    try:
        data = pipeline_components.model_artifact(s3, found, version)
    except (PipelineError, ClientError) as exc:
        raise ComponentDevError(f"cannot build the model component of {arn}: {exc}") from exc
    recipe = build.render_recipe(
        "model", component_name=model_name, component_version=version, artifact_uri=artifact_uri_placeholder
    )
    return Built("model", recipe, {artifact_file(artifact_uri_placeholder): data})
