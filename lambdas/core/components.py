"""PublishComponents / CheckComponents: versioned Greengrass components for the model and the code.

Versions are never scanned-and-bumped: the model's comes from its registry version, the inference
code's from a hash of its artifact. So publishing is idempotent — an identical version that
already exists is reported ``reused`` — and a model update ships the model alone, because the
inference version changes only when its code does.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, put_immutable, read_object, sha256_hex, transient_errors
from lambdas.core.exceptions import ArtifactConflict, ComponentFailed
from lambdas.core.monitoring_context import write_monitoring_files
from pipeline.config.polling import poll_section
from pipeline.ml.model_files import OPTIONAL_MODEL_FILES


def _environment(sts: Any, greengrass: Any) -> tuple[str, str, str]:
    """(partition, region, account) of the caller: component ARNs need all three."""
    with transient_errors("GetCallerIdentity"):
        identity = sts.get_caller_identity()
    partition = identity["Arn"].split(":")[1]
    return partition, greengrass.meta.region_name, identity["Account"]


def component_arn(env: tuple[str, str, str], name: str, version: str) -> str:
    partition, region, account = env
    return f"arn:{partition}:greengrass:{region}:{account}:components:{name}:versions:{version}"


def describe(greengrass: Any, arn: str) -> dict[str, Any] | None:
    """The component version's status, or None when it does not exist."""
    with transient_errors(f"DescribeComponent {arn}"):
        try:
            found = greengrass.describe_component(arn=arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
    status = found.get("status") or {}
    return {
        "state": status.get("componentState", "REQUESTED"),
        "message": status.get("message") or "",
        "errors": status.get("errors") or {},
    }


def _publish(
    greengrass: Any,
    s3: Any,
    env: tuple[str, str, str],
    config: dict[str, Any],
    *,
    name: str,
    version: str,
    artifact: bytes,
    file_name: str,
    recipe_for: Any,
) -> dict[str, Any]:
    bucket = config["bucket"]
    key = f"{config['artifact_prefix']}components/{name}/{version}/{file_name}"
    uri = f"s3://{bucket}/{key}"
    digest, _ = put_immutable(s3, bucket, key, artifact, content_type="application/zip")
    arn = component_arn(env, name, version)
    existing = describe(greengrass, arn)
    reused = existing is not None
    if existing is None:
        recipe = recipe_for(uri)
        with transient_errors(f"CreateComponentVersion {name} {version}"):
            try:
                greengrass.create_component_version(inlineRecipe=json.dumps(recipe, sort_keys=True).encode())
            except ClientError as exc:
                raise ComponentFailed(f"Greengrass refused {name} {version}: {exc}") from exc
        existing = describe(greengrass, arn) or {"state": "REQUESTED", "message": "", "errors": {}}
    return {
        "name": name,
        "version": version,
        "arn": arn,
        "artifact_uri": uri,
        "sha256": digest,
        "reused": reused,
        "state": existing["state"],
    }


def _checked(s3: Any, uri: str, sha256: str) -> bytes:
    """The object's bytes, refused unless they have the digest the registry recorded."""
    data = read_object(s3, uri)
    if sha256_hex(data) != sha256:
        raise ArtifactConflict(
            f"{uri} has sha256 {sha256_hex(data)}, the registry says {sha256}: "
            "the artifact was changed after registration; do not deploy it"
        )
    return data


def optional_files(s3: Any, model: dict[str, Any]) -> dict[str, bytes]:
    """The registered optional files (the baseline, ...) by name, each digest checked; names this
    pipeline does not know are left out (a path from metadata never reaches the file system)."""
    files = model.get("files") or {}
    return {
        name: _checked(s3, files[name]["uri"], files[name]["sha256"])
        for name in OPTIONAL_MODEL_FILES
        if name in files
    }


def model_artifact(
    s3: Any, registry: dict[str, Any], version: str, extra: dict[str, bytes] | None = None
) -> bytes:
    """The model zip: model.onnx (digest checked) + model.json stamped with registry version/ARN,
    and the registered optional files (the baseline, ...) at their relative paths, each checked
    (``extra``: already read with :func:`optional_files`).

    ``registry`` is RegisterModel's (or ``registry.resolve``'s) result. One builder for the pipeline
    and ``mlops-edge component deploy --model-package``, so both publish the same bytes."""
    from components import build

    model = registry["model"]
    extra = optional_files(s3, model) if extra is None else extra
    onnx = _checked(s3, model["onnx_uri"], model["sha256"])
    manifest = json.loads(read_object(s3, model["manifest_uri"]))
    manifest.update(model_version=version, model_package_arn=registry["model_package_arn"])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "model.onnx").write_bytes(onnx)
        (Path(tmp) / "model.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        for name, data in extra.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        return build.model_artifact(Path(tmp), tuple(extra))


def publish_components(event: dict[str, Any], *, s3: Any, greengrass: Any, sts: Any) -> dict[str, Any]:
    from components import build

    config, registry = event["config"], event["registry"]
    names = config["components"]
    env = _environment(sts, greengrass)
    model_version = build.model_version(int(registry["model_package_version"]))
    extra = optional_files(s3, registry["model"])
    model = _publish(
        greengrass,
        s3,
        env,
        config,
        name=names["model_name"],
        version=model_version,
        artifact=model_artifact(s3, registry, model_version, extra),
        file_name="model.zip",
        recipe_for=lambda uri: build.render_recipe(
            "model", component_name=names["model_name"], component_version=model_version, artifact_uri=uri
        ),
    )
    code = build.inference_artifact()
    inference_version = build.inference_version(code)
    inference = _publish(
        greengrass,
        s3,
        env,
        config,
        name=names["inference_name"],
        version=inference_version,
        artifact=code,
        file_name="inference.zip",
        recipe_for=lambda uri: build.render_recipe(
            "inference",
            component_name=names["inference_name"],
            component_version=inference_version,
            artifact_uri=uri,
            model_component_name=names["model_name"],
        ),
    )
    write_monitoring_files(s3, config, registry, model_version, extra)
    return {**_with_deployable({"model": model, "inference": inference}), **poll_section(event, "components")}


def _with_deployable(components: dict[str, Any]) -> dict[str, Any]:
    for part in ("model", "inference"):
        c = components[part]
        if c["state"] == "FAILED":
            raise ComponentFailed(
                f"component {c['name']} {c['version']} FAILED: {c.get('message') or 'no message'} "
                f"{json.dumps(c.get('errors') or {})}; check the recipe and that {c['artifact_uri']} is readable"
            )
    deployable = all(components[p]["state"] == "DEPLOYABLE" for p in ("model", "inference"))
    return {
        "model": {k: v for k, v in components["model"].items() if k not in ("message", "errors")},
        "inference": {k: v for k, v in components["inference"].items() if k not in ("message", "errors")},
        "deployable": deployable,
    }


def check_components(event: dict[str, Any], *, greengrass: Any) -> dict[str, Any]:
    """Re-reads both versions' states; FAILED raises, otherwise ``deployable`` says if both are ready."""
    components = {p: dict(event["components"][p]) for p in ("model", "inference")}
    for part, c in components.items():
        status = describe(greengrass, c["arn"])
        if status is None:
            raise ComponentFailed(f"component {c['name']} {c['version']} disappeared ({c['arn']})")
        components[part].update(status)
    return {**_with_deployable(components), **poll_section(event, "components")}
