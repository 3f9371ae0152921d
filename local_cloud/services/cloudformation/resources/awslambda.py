"""AWS::Lambda::Function (and AWS::Lambda::Permission) through the Lambda API: zip code from S3 (or inline), or a container image
(``PackageType: Image`` with its ``ImageConfig``), with the template's role, environment, timeout and
memory. An image must exist in ECR, as on AWS; the local runtime runs its CMD handler."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    NotEmulated,
    ResourceRequest,
    client,
    generated_name,
    tag_dict,
)

#: Template property -> Lambda API parameter of CreateFunction / UpdateFunctionConfiguration.
_CONFIG = {
    "Role": "Role",
    "Handler": "Handler",
    "Runtime": "Runtime",
    "Timeout": "Timeout",
    "MemorySize": "MemorySize",
    "Environment": "Environment",
    "Description": "Description",
    "TracingConfig": "TracingConfig",
    "ImageConfig": "ImageConfig",
    "EphemeralStorage": "EphemeralStorage",
    "Layers": "Layers",
    "KmsKeyArn": "KMSKeyArn",
    "DeadLetterConfig": "DeadLetterConfig",
    "LoggingConfig": "LoggingConfig",
}
_INTEGERS = {"Timeout", "MemorySize"}
#: What a configuration the template no longer sets goes back to.
_DEFAULTS: dict[str, Any] = {
    "Environment": {"Variables": {}},
    "Description": "",
    "TracingConfig": {"Mode": "PassThrough"},
}
_IMAGE_URI = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.[^/]+/(?P<repo>[^:@]+)(?::(?P<tag>[^@]+)|@(?P<digest>.+))$"
)


def _config(properties: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for prop, param in _CONFIG.items():
        if prop not in properties:
            continue
        value = properties[prop]
        if prop in _INTEGERS:
            value = int(value)
        elif prop == "Environment":
            value = {"Variables": {str(k): str(v) for k, v in (value.get("Variables") or {}).items()}}
        elif prop == "EphemeralStorage":
            value = {"Size": int(value["Size"])}
        config[param] = value
    return config


def _inline_zip(source: str, runtime: str) -> bytes:
    """CloudFormation's ``Code.ZipFile``: the source, as ``index.py`` / ``index.js``, zipped."""
    name = "index.py" if runtime.startswith("python") else "index.js"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), source)
    return buf.getvalue()


def _code(properties: dict[str, Any]) -> dict[str, Any]:
    """The ``Code`` of CreateFunction; an image is checked in ECR first (AWS refuses a missing one)."""
    code = properties.get("Code") or {}
    if "ImageUri" in code:
        _check_image(code["ImageUri"])
        return {"ImageUri": code["ImageUri"]}
    if "ZipFile" in code:
        return {"ZipFile": _inline_zip(code["ZipFile"], str(properties.get("Runtime", "")))}
    if "S3Bucket" in code and "S3Key" in code:
        return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion") if k in code}
    raise NotEmulated(f"Code must have ImageUri, ZipFile or S3Bucket and S3Key, not {sorted(code)}")


def _check_image(uri: str) -> None:
    match = _IMAGE_URI.match(uri)
    if not match:
        raise ValueError(f"Source image {uri} is not valid. Provide a valid source image.")
    image_id = {"imageTag": match["tag"]} if match["tag"] else {"imageDigest": match["digest"]}
    ecr = client("ecr")
    try:
        found = ecr.batch_get_image(
            registryId=match["registry"], repositoryName=match["repo"], imageIds=[image_id]
        )["images"]
    except ecr.exceptions.RepositoryNotFoundException:
        found = []
    if not found:
        raise ValueError(f"Source image {uri} does not exist. Provide a valid source image.")


class Function(Handler, CloudFormationModel):
    TYPE = "AWS::Lambda::Function"
    NAME = "FunctionName"
    NAME_LIMIT = 64
    ATTRIBUTES = ("Arn",)
    REPLACE_ON = ("PackageType",)
    PROPERTIES = frozenset(
        {
            "FunctionName",
            "Code",
            "PackageType",
            "Architectures",
            "Tags",
            "ReservedConcurrentExecutions",
            *_CONFIG,
        }
    )

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        lam = client("lambda")
        function = lam.create_function(
            FunctionName=request.name,
            Code=_code(props),
            PackageType=props.get("PackageType", "Zip"),
            Architectures=props.get("Architectures") or ["x86_64"],
            Tags=tag_dict(props),
            Publish=False,
            **_config(props),
        )
        if props.get("ReservedConcurrentExecutions") is not None:
            lam.put_function_concurrency(
                FunctionName=request.name,
                ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"]),
            )
        return Deployed(request.name, {"Arn": function["FunctionArn"]})

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        props, old = request.properties, previous.properties
        lam = client("lambda")
        name = previous.physical_id
        if props.get("Code") != old.get("Code") or props.get("Architectures") != old.get("Architectures"):
            lam.update_function_code(
                FunctionName=name, Architectures=props.get("Architectures") or ["x86_64"], **_code(props)
            )
        config, old_config = _config(props), _config(old)
        if config != old_config:
            # a property the template dropped goes back to Lambda's default, as on AWS
            cleared = {
                param: _DEFAULTS[param] for param in set(old_config) - set(config) if param in _DEFAULTS
            }
            lam.update_function_configuration(FunctionName=name, **config, **cleared)
        new_tags, old_tags = tag_dict(props), tag_dict(old)
        if new_tags != old_tags:
            arn = previous.attributes["Arn"]
            if set(old_tags) - set(new_tags):
                lam.untag_resource(Resource=arn, TagKeys=sorted(set(old_tags) - set(new_tags)))
            if new_tags:
                lam.tag_resource(Resource=arn, Tags=new_tags)
        if props.get("ReservedConcurrentExecutions") != old.get("ReservedConcurrentExecutions"):
            if props.get("ReservedConcurrentExecutions") is None:
                lam.delete_function_concurrency(FunctionName=name)
            else:
                lam.put_function_concurrency(
                    FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
                )
        return Deployed(name, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("lambda").delete_function(FunctionName=previous.physical_id)


class Permission(Handler, CloudFormationModel):
    """A statement of a function's resource-based policy (``AddPermission``): who else may invoke it,
    e.g. ``iot.amazonaws.com`` for a topic rule (the local rules engine checks it). Every property
    replaces it, as on AWS; the physical id is the statement id."""

    TYPE = "AWS::Lambda::Permission"
    PROPERTIES = frozenset({"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"})
    REPLACE_ON = tuple(sorted(PROPERTIES))

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        props = request.properties
        optional = {k: str(props[k]) for k in ("SourceArn", "SourceAccount") if props.get(k)}
        statement_id = generated_name(request.stack_name, request.logical_id, limit=100)
        client("lambda").add_permission(
            FunctionName=str(props["FunctionName"]),
            StatementId=statement_id,
            Action=str(props["Action"]),
            Principal=str(props["Principal"]),
            **optional,
        )
        return Deployed(statement_id)

    @classmethod
    def remove(cls, previous: Any) -> None:
        # a function deleted first took its policy with it: base.py treats that not-found as done
        client("lambda").remove_permission(
            FunctionName=str(previous.properties["FunctionName"]), StatementId=previous.physical_id
        )
