"""`mlops-edge component build|deploy`: the inner loop of component work, without training.

Like `gdk component build` then `greengrass-cli deployment create --recipeDir --artifactDir`, but
through the control plane the standard AWS environment points at (the local cloud when
``AWS_ENDPOINT_URL`` is set, AWS otherwise), so the device gets the component the way the
pipeline's deployments reach it. The work is in ``mlops_edge.environment.component_dev``; boto3
and the project's build are imported only when a command runs, so `--help` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from mlops_edge.commands.common import UserError, console

KIND = click.Choice(["inference", "model"])


@click.group()
def component() -> None:
    """Build the working tree's component and deploy it to one device, in seconds.

    \b
    mlops-edge component build inference
    mlops-edge component deploy --thing mlops-edge-device-01
    mlops-edge component deploy --thing T --recipe-dir B/recipes --artifact-dir B/artifacts
    mlops-edge component deploy --thing T --model-package ARN
    mlops-edge component reset --thing T
    """


@component.command()
@click.argument("kind", type=KIND, default="inference")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Build directory (default: components/<kind>/greengrass-build, as GDK).",
)
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="model: an exported model directory (model.onnx + model.json).",
)
@click.option("--version", "model_version", help="model: component version 1.0.<n> (default: model.json's).")
@click.option("--prefix", help="Component name prefix (default: gdk-config.json's names).")
def build(kind: str, out_dir: Path | None, model_dir: Path | None, model_version: str | None,
          prefix: str | None) -> None:  # fmt: skip
    """Build a component with the pipeline's own packaging; print its recipe and artifact dirs."""
    from mlops_edge.environment.component_dev import ComponentDevError, build_component

    try:
        built = build_component(
            kind,  # type: ignore[arg-type]
            out_dir=out_dir,
            model_dir=model_dir,
            model_version=model_version,
            prefix=prefix,
        )
    except ComponentDevError as exc:
        raise UserError(str(exc)) from exc
    console.print(f"built {built.name} {built.version}")
    console.print(f"  recipe dir   {built.recipe_dir}")
    console.print(f"  artifact dir {built.artifact_dir}")
    console.print(
        f"deploy it: mlops-edge component deploy --thing NAME --component {kind} "
        f"--recipe-dir {built.recipe_dir} --artifact-dir {built.artifact_dir}"
    )


def _merge(text: str | None) -> dict[str, Any]:
    """``--merge`` as a dict (empty without it)."""
    if not text:
        return {}
    try:
        merge = json.loads(text)
    except ValueError as exc:
        raise UserError(f"--merge is not JSON: {exc}") from exc
    if not isinstance(merge, dict):
        raise UserError("--merge must be a JSON object, e.g. '{\"TelemetryIntervalSeconds\": 5}'")
    return merge


def _local_defaults(merge: dict[str, Any], kind: str, endpoint_url: str | None) -> dict[str, Any] | None:
    """On the local cloud (an endpoint on this machine, by AWS_ENDPOINT_URL or a profile's
    endpoint_url) the inference component reuses this interpreter, as `mlops-edge run` does: a
    simulated device must not pip install. Elsewhere ``merge`` goes as given."""
    from urllib.parse import urlparse

    local = urlparse(endpoint_url or "").hostname in ("127.0.0.1", "localhost", "::1")
    if kind == "inference" and local and "PythonPath" not in merge:
        from mlops_edge.environment.deploy import python_for_devices

        merge = {**merge, "PythonPath": python_for_devices()}
    return merge or None


def _check_sources(kind: str, recipe_dir: Path | None, artifact_dir: Path | None, model_package: str | None,
                   model_dir: Path | None) -> None:  # fmt: skip
    """The options name one source of the component, fit for ``kind``: checked before any call."""
    if (recipe_dir is None) != (artifact_dir is None):
        raise UserError("--recipe-dir and --artifact-dir go together")
    given = [o for o, v in (("--recipe-dir", recipe_dir), ("--model-package", model_package),
                            ("--model-dir", model_dir)) if v]  # fmt: skip
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} exclude each other: give one source")
    if (model_package or model_dir) and kind != "model":
        raise UserError(f"{given[0]} deploys the model component, not --component {kind}")
    if model_package:
        from mlops_edge.environment.run_options import MODEL_PACKAGE_ARN

        if not MODEL_PACKAGE_ARN.match(model_package):
            raise UserError(
                f"--model-package {model_package!r} is not a model package version ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )
    if kind == "model" and not (model_package or model_dir or recipe_dir):
        raise UserError(
            "deploying the model component needs --model-package ARN, --model-dir or --recipe-dir"
        )


def _built(kind: str, recipe_dir: Path | None, artifact_dir: Path | None, model_package: str | None,
           model_dir: Path | None, prefix: str | None, tmp: Path) -> Any:  # fmt: skip
    from mlops_edge.environment.component_dev import build_component, load_build
    from mlops_edge.environment.component_dev.build import component_names
    from pipeline.aws import client

    if recipe_dir is not None and artifact_dir is not None:
        return load_build(recipe_dir, artifact_dir, kind=kind, prefix=prefix)  # type: ignore[arg-type]
    if model_package:
        from mlops_edge.environment.component_dev.publish import model_package_build

        return model_package_build(
            model_package,
            sagemaker=client("sagemaker"),
            s3=client("s3"),
            model_name=component_names(prefix)["model"],
            artifact_uri_placeholder="s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/model.zip",
        )
    if kind == "model" and model_dir is None:
        raise UserError(
            "deploying the model component needs --model-package ARN, --model-dir or --recipe-dir"
        )
    return build_component(kind, out_dir=tmp, model_dir=model_dir, prefix=prefix)  # type: ignore[arg-type]


@component.command()
@click.option("--thing", required=True, help="The core device's thing name.")
@click.option(
    "--component",
    "kind",
    type=KIND,
    default="inference",
    show_default=True,
    help="Which component is deployed.",
)
@click.option(
    "--recipe-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A built component's recipe directory (`component build`, GDK or greengrass-cli).",
)
@click.option(
    "--artifact-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Its artifact directory (<dir>/<name>/<version>/<file>).",
)
@click.option("--model-package", help="model: a registered model package version ARN.")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="model: an exported model directory (model.json names the version).",
)
@click.option("--merge", "merge_text", help="Configuration merged into the component, as JSON.")
@click.option("--bucket", help="Artifact bucket (default: the deployed pipeline stack's).")
@click.option("--prefix", help="Component name prefix (default: gdk-config.json's names).")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds to wait for the device's result.",
)
def deploy(thing: str, kind: str, recipe_dir: Path | None, artifact_dir: Path | None,
           model_package: str | None, model_dir: Path | None, merge_text: str | None,
           bucket: str | None, prefix: str | None, timeout_s: float) -> None:  # fmt: skip
    """Publish a dev version of a component and deploy it to one device, keeping the rest.

    Without --recipe-dir/--model-package/--model-dir the working tree's component is built first.
    Versions: the inference component is published as <release>-dev.g<hash of recipe + artifacts>
    (same build, same version; any edit, a new one); the model keeps 1.0.<registry version>.
    """
    import tempfile

    from mlops_edge.commands.aws import aws_errors
    from mlops_edge.environment.component_dev import ComponentDevError

    source = click.get_current_context().get_parameter_source("kind")
    if (model_package or model_dir) and source is click.core.ParameterSource.DEFAULT:
        kind = "model"  # a model package or directory can only be the model component
    _check_sources(kind, recipe_dir, artifact_dir, model_package, model_dir)
    merge = _merge(merge_text)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlops-edge-component-") as tmp, aws_errors():
        try:
            _deploy(thing, kind, recipe_dir, artifact_dir, model_package, model_dir, merge, bucket, prefix,
                    timeout_s, Path(tmp), started)  # fmt: skip
        except ComponentDevError as exc:
            raise UserError(str(exc)) from exc


def _deploy(thing: str, kind: str, recipe_dir: Path | None, artifact_dir: Path | None,
            model_package: str | None, model_dir: Path | None, merge: dict[str, Any] | None,
            bucket: str | None, prefix: str | None, timeout_s: float, tmp: Path,
            started: float) -> None:  # fmt: skip
    from mlops_edge.environment.component_dev import deploy as dev_deploy
    from mlops_edge.environment.component_dev.publish import find_bucket, publish
    from pipeline.aws import client

    greengrass, iot = client("greengrassv2"), client("iot")
    merge = _local_defaults(merge or {}, kind, greengrass.meta.endpoint_url)
    built = _built(kind, recipe_dir, artifact_dir, model_package, model_dir, prefix, tmp)
    plan = dev_deploy.plan(iot=iot, greengrass=greengrass, thing=thing, name=built.name,
                           version=built.version, merge=merge)  # fmt: skip
    if plan.already_from:
        console.print(
            f"{built.name} {built.version} is what thing group {plan.already_from!r} deploys to {thing} "
            "already: nothing to deploy"
        )
        return
    bucket = bucket or find_bucket(client("cloudformation"))
    published = publish(built, greengrass=greengrass, s3=client("s3"), sts=client("sts"), bucket=bucket)
    console.print(
        f"{published.name} {published.version} {'reused' if published.reused else 'published'} "
        f"({', '.join(published.artifact_uris)})"
    )
    kept = ", ".join(f"{n} {v}" for n, v in plan.kept.items()) or "nothing else"
    console.print(f"deploying to {thing} ({plan.device_status or 'status unknown'}), keeping {kept}")
    if merge:
        console.print(f"  configuration merge {json.dumps(merge, sort_keys=True)}")
    deployment_id = dev_deploy.start(greengrass, plan, name=built.name)
    console.print(f"deployment {deployment_id}")
    result = dev_deploy.watch(greengrass, thing, deployment_id, log=console.print, timeout_s=timeout_s)
    took = time.monotonic() - started
    if result["status"] != "SUCCEEDED":
        raise UserError(
            f"deployment {deployment_id} failed on {thing} after {took:.1f} s: {result['detail']}"
        )
    console.print(f"{published.name} {published.version} running on {thing} ({took:.1f} s)")


@component.command()
@click.option("--thing", required=True, help="The core device's thing name.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Seconds to wait for the device's result.",
)
def reset(thing: str, timeout_s: float) -> None:  # fmt: skip
    """Hand a device back to its thing groups: remove what thing deployments gave it.

    A deployment to the thing with no components, as `component deploy` made it (or the console):
    its own components go, what its thing groups deploy stays.
    """
    from mlops_edge.commands.aws import aws_errors
    from mlops_edge.environment.component_dev import ComponentDevError
    from mlops_edge.environment.component_dev import deploy as dev_deploy
    from pipeline.aws import client

    started = time.monotonic()
    with aws_errors():
        try:
            greengrass = client("greengrassv2")
            plan = dev_deploy.reset_plan(iot=client("iot"), greengrass=greengrass, thing=thing)
            if not plan.kept:
                console.print(f"{thing} has no components of its own: nothing to reset")
                return
            going = ", ".join(f"{n} {v}" for n, v in sorted(plan.kept.items()))
            console.print(f"removing from {thing}: {going} (its thing groups' components stay)")
            deployment_id = dev_deploy.start(greengrass, plan, name="reset")
            console.print(f"deployment {deployment_id}")
            result = dev_deploy.watch(
                greengrass, thing, deployment_id, log=console.print, timeout_s=timeout_s
            )
        except ComponentDevError as exc:
            raise UserError(str(exc)) from exc
    took = time.monotonic() - started
    if result["status"] != "SUCCEEDED":
        raise UserError(
            f"deployment {deployment_id} failed on {thing} after {took:.1f} s: {result['detail']}"
        )
    console.print(f"{thing} runs only what its thing groups deploy ({took:.1f} s)")
