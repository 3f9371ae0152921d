"""components/build.py: deterministic artifacts, versions, recipes valid the way GDK checks them."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components import build
from pipeline.archive import deterministic_zip

HERE = Path(__file__).parent
#: The component name prefix the deployed pipeline uses (cdk.json context), hence its component names.
PREFIX = json.loads((build.REPO_ROOT / "cdk.json").read_text())["context"]["component_prefix"]
RECIPE_SCHEMA = json.loads((HERE / "gdk-recipe-schema.json").read_text())
CONFIG_SCHEMA = json.loads((HERE / "gdk-config-schema.json").read_text())


def _lower_keys(value: Any) -> Any:
    """What GDK does before validating: lowercase every key, recursively."""
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _gdk_validate(recipe: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(RECIPE_SCHEMA).validate(_lower_keys(recipe))


def _recipes() -> dict[str, dict[str, Any]]:
    return {
        "model": build.render_recipe(
            "model",
            component_name="com.example.Model",
            component_version="1.0.3",
            artifact_uri="s3://bucket/models/com.example.Model/1.0.3/model.zip",
        ),
        "inference": build.render_recipe(
            "inference",
            component_name="com.example.Inference",
            component_version="1.0.77",
            artifact_uri="s3://bucket/code/com.example.Inference/1.0.77/inference.zip",
            model_component_name="com.example.Model",
            configuration={"PythonPath": "/usr/bin/python3", "TelemetryIntervalSeconds": 2},
        ),
    }


@pytest.mark.parametrize("kind", ["model", "inference"])
def test_recipes_pass_the_gdk_schema(kind: str) -> None:
    recipe = _recipes()[kind]
    _gdk_validate(recipe)
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    art = recipe["Manifests"][0]["Artifacts"][0]
    assert art["Unarchive"] == "ZIP"


def test_a_broken_recipe_fails_the_schema() -> None:
    recipe = _recipes()["model"]
    recipe["RecipeFormatVersion"] = "2021-01-01"
    with pytest.raises(jsonschema.ValidationError):
        _gdk_validate(recipe)


@pytest.mark.parametrize("kind", ["model", "inference"])
def test_gdk_config_passes_its_schema(kind: str) -> None:
    config = json.loads((build.COMPONENTS_DIR / kind / "gdk-config.json").read_text())
    jsonschema.Draft7Validator(CONFIG_SCHEMA).validate(config)


def test_model_recipe_runs_nothing() -> None:
    assert "Lifecycle" not in _recipes()["model"]["Manifests"][0]


def test_inference_recipe_wiring() -> None:
    recipe = _recipes()["inference"]
    dep = recipe["ComponentDependencies"]["com.example.Model"]
    assert dep == {"VersionRequirement": build.DEFAULT_MODEL_VERSION_REQUIREMENT, "DependencyType": "HARD"}
    conf = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert conf["PythonPath"] == "/usr/bin/python3" and conf["TelemetryIntervalSeconds"] == 2
    lifecycle = recipe["Manifests"][0]["Lifecycle"]
    assert "{com.example.Model:artifacts:decompressedPath}" in lifecycle["Run"]["Script"]
    assert "{com.example.Model:artifacts:decompressedPath}" in lifecycle["Install"]["Script"]
    assert lifecycle["Install"]["Timeout"] >= 600
    assert lifecycle["Setenv"]["PYTHONPATH"] == "{artifacts:decompressedPath}/inference"
    assert "Startup" not in lifecycle  # the nucleus skips Run when Startup exists
    acl = conf["accessControl"]
    mqtt = {
        op: res
        for pol in acl["aws.greengrass.ipc.mqttproxy"].values()
        for op in pol["operations"]
        for res in [pol["resources"]]
    }
    assert mqtt["aws.greengrass#SubscribeToIoTCore"] == ["edge/{iot:thingName}/inference/request"]
    assert sorted(mqtt["aws.greengrass#PublishToIoTCore"]) == [
        "edge/{iot:thingName}/inference/result",
        "edge/{iot:thingName}/monitoring",
        "edge/{iot:thingName}/telemetry",
    ]
    assert conf["MonitoringTopic"] == "edge/{iot:thingName}/monitoring"
    assert conf["MonitoringWindowSeconds"] == 300
    pubsub = {
        op: pol["resources"] for pol in acl["aws.greengrass.ipc.pubsub"].values() for op in pol["operations"]
    }
    assert pubsub == {
        "aws.greengrass#SubscribeToTopic": ["edge/inference/request"],
        "aws.greengrass#PublishToTopic": ["edge/inference/result"],
    }


def test_no_placeholder_left() -> None:
    for recipe in _recipes().values():
        text = json.dumps(recipe)
        for placeholder in ("{COMPONENT_", "{ARTIFACT_", "{MODEL_"):
            assert placeholder not in text


def test_inference_recipe_needs_model_name() -> None:
    with pytest.raises(ValueError):
        build.render_recipe(
            "inference", component_name="a", component_version="1.0.0", artifact_uri="s3://b/x.zip"
        )


def test_artifacts_are_deterministic(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"onnx-bytes")
    (tmp_path / "model.json").write_text("{}")
    a = build.model_artifact(tmp_path)
    (tmp_path / "model.json").touch()  # a newer mtime must not change the bytes
    assert build.model_artifact(tmp_path) == a
    assert sorted(zipfile.ZipFile(io.BytesIO(a)).namelist()) == ["model.json", "model.onnx"]
    code = build.inference_artifact()
    assert code == build.inference_artifact()
    names = zipfile.ZipFile(io.BytesIO(code)).namelist()
    assert "inference_component/__main__.py" in names
    assert "edge_runtime/__init__.py" in names and "requirements.txt" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_versions() -> None:
    assert build.model_version(4) == "1.0.4"
    with pytest.raises(ValueError):
        build.model_version(0)
    v = build.inference_version(b"abc")
    assert v == build.inference_version(b"abc") != build.inference_version(b"abd")
    major, minor, patch = (int(x) for x in v.split("."))
    assert (major, minor) == (1, 0) and 0 <= patch < 2**31


#: Class names of test doubles by the usual conventions.
TEST_DOUBLE = re.compile(r"^(Fake|Stub|Mock|Dummy|Spy)[A-Z_]")
TEST_ONLY_MODULES = {"pytest", "unittest", "mock", "hypothesis"}


def _test_code_in(artifact: bytes) -> list[str]:
    """What in a zipped component looks like test code: test files, test doubles, test imports."""
    found = []
    with zipfile.ZipFile(io.BytesIO(artifact)) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if {"tests", "test"} & set(parts[:-1]) or parts[-1].startswith(("test_", "conftest")):
                found.append(f"{name}: test file")
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(zf.read(name), filename=name)):
                if isinstance(node, ast.ClassDef) and TEST_DOUBLE.match(node.name):
                    found.append(f"{name}: class {node.name}")
                elif isinstance(node, ast.Import | ast.ImportFrom):
                    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                    found += [
                        f"{name}: imports {m}" for m in modules if m and m.split(".")[0] in TEST_ONLY_MODULES
                    ]
    return found


def test_the_inference_artifact_ships_no_test_code() -> None:
    assert _test_code_in(build.inference_artifact()) == []


def test_the_test_code_scan_finds_a_double() -> None:
    double = b"import unittest.mock\n\nclass FakeMessaging:\n    pass\n"
    artifact = deterministic_zip([("inference_component/messaging.py", double), ("tests/x.txt", b"")])
    assert _test_code_in(artifact) == [
        "inference_component/messaging.py: imports unittest.mock",
        "inference_component/messaging.py: class FakeMessaging",
        "tests/x.txt: test file",
    ]


# -- GDK: gdk-config.json says what the custom build does ----------------------------------------


def _gdk_config(kind: str) -> dict[str, Any]:
    return json.loads((build.COMPONENTS_DIR / kind / "gdk-config.json").read_text())


def _component_folder(tmp_path: Path, kind: str) -> Path:
    """A copy of a component folder, so a build writes its greengrass-build/ outside the repository."""
    folder = tmp_path / kind
    folder.mkdir()
    for name in ("gdk-config.json", "recipe.yaml"):
        shutil.copy(build.COMPONENTS_DIR / kind / name, folder / name)
    if kind == "model":
        (folder / "model").mkdir()
        (folder / "model" / "model.onnx").write_bytes(b"onnx-bytes")
        (folder / "model" / "model.json").write_text("{}")
    return folder


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _gdk_publish(folder: Path, *, account: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What ``gdk component publish`` would create from a built folder: (recipe, {S3 URI: bytes}).

    Mirrors GDK 1.6 (ComponentPublishConfiguration, PublishCommand, PublishRecipeTransformer): the
    bucket is ``{publish.bucket}-{region}-{account}``; every file in
    ``greengrass-build/artifacts/<name>/<config version>/`` is uploaded to ``<name>/<version>/<file>``;
    the recipe read from ``greengrass-build/recipes/recipe.yaml`` gets the config's version, and each
    s3 artifact URI whose file was built gets the uploaded location.
    """
    config = json.loads((folder / "gdk-config.json").read_text())
    ((name, spec),) = config["component"].items()
    version = spec["version"]
    assert version != "NEXT_PATCH", "NEXT_PATCH would be the service's next patch, not the built version"
    bucket = f"{spec['publish']['bucket']}-{spec['publish']['region']}-{account}"
    built = folder / "greengrass-build" / "artifacts" / name / version
    uploads = {f"s3://{bucket}/{name}/{version}/{p.name}": p.read_bytes() for p in built.iterdir()}
    recipe = yaml.safe_load((folder / "greengrass-build" / "recipes" / "recipe.yaml").read_text())
    recipe["ComponentVersion"] = version
    for manifest in recipe.get("Manifests", []):
        for artifact in manifest.get("Artifacts", []):
            file_name = artifact["URI"].rsplit("/", 1)[-1]
            if artifact["URI"].startswith("s3://") and (built / file_name).is_file():
                artifact["URI"] = f"s3://{bucket}/{name}/{version}/{file_name}"
    return recipe, uploads


@pytest.mark.parametrize("kind", ["model", "inference"])
def test_gdk_config_runs_this_file_as_a_custom_build(kind: str) -> None:
    spec = _gdk_config(kind)["component"][f"{PREFIX}.{kind.capitalize()}"]
    assert spec["build"] == {
        "build_system": "custom",
        "custom_build_command": ["python", "../build.py", "gdk", kind],
    }
    # GDK runs the command in the component folder
    assert (build.COMPONENTS_DIR / kind / "../build.py").resolve() == Path(build.__file__).resolve()
    assert spec["author"] == build.DEFAULT_AUTHOR


def test_inference_gdk_version_is_the_content_hash_the_pipeline_publishes() -> None:
    version = build.inference_version(build.inference_artifact())
    ((_, spec),) = _gdk_config("inference")["component"].items()
    assert spec["version"] == version, (
        f'the inference code changed: set "version": "{version}" in components/inference/gdk-config.json'
    )


def test_model_gdk_version_is_a_model_version() -> None:
    ((_, spec),) = _gdk_config("model")["component"].items()
    assert spec["version"] == build.model_version(int(spec["version"].rsplit(".", 1)[1]))


@pytest.mark.parametrize("kind", ["model", "inference"])
def test_gdk_build_writes_gdks_layout(tmp_path: Path, kind: str) -> None:
    folder = _component_folder(tmp_path, kind)
    ((name, spec),) = _gdk_config(kind)["component"].items()
    artifact = build.gdk_build(kind, folder)  # type: ignore[arg-type]
    version = spec["version"]
    assert _files(folder / "greengrass-build") == {
        "recipes/recipe.yaml",
        f"artifacts/{name}/{version}/{kind}.zip",
    }
    assert artifact == folder / "greengrass-build" / "artifacts" / name / version / f"{kind}.zip"
    expected = build.model_artifact(folder / "model") if kind == "model" else build.inference_artifact()
    assert artifact.read_bytes() == expected
    recipe = yaml.safe_load((folder / "greengrass-build" / "recipes" / "recipe.yaml").read_text())
    _gdk_validate(recipe)
    assert (recipe["ComponentName"], recipe["ComponentVersion"]) == (name, version)
    uri = recipe["Manifests"][0]["Artifacts"][0]["URI"]
    assert uri == f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{kind}.zip"  # as GDK's builds write it


def test_gdk_build_of_the_model_ships_the_pipelines_optional_files(tmp_path: Path) -> None:
    """The drift baseline and the accelerated variant, as PublishComponents zips them; files the
    export writes but nobody ships (golden.json) stay out."""
    from lambdas.core import components as publish

    assert publish.OPTIONAL_MODEL_FILES is build.OPTIONAL_MODEL_FILES  # one list, not a copy
    folder = _component_folder(tmp_path, "model")
    written = {name: f"bytes of {name}".encode() for name in (*build.OPTIONAL_MODEL_FILES, "golden.json")}
    for name, data in written.items():
        (folder / "model" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "model" / name).write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(build.gdk_build("model", folder).read_bytes())) as zipped:
        shipped = {name: zipped.read(name) for name in zipped.namelist()}
    assert set(shipped) == {"model.onnx", "model.json", *build.OPTIONAL_MODEL_FILES}
    assert all(shipped[name] == written[name] for name in build.OPTIONAL_MODEL_FILES)


def test_gdk_publish_creates_what_the_pipeline_publishes(tmp_path: Path) -> None:
    folder = _component_folder(tmp_path, "inference")
    build.gdk_build("inference", folder)
    recipe, uploads = _gdk_publish(folder, account="123456789012")

    # what lambdas/core/components.py publishes, with the deployed pipeline's component names
    prefix = PREFIX
    code = build.inference_artifact()
    (uri,) = uploads
    assert uri == (
        f"s3://mlops-edge-components-us-east-1-123456789012/{prefix}.Inference/"
        f"{build.inference_version(code)}/inference.zip"
    )
    assert uploads[uri] == code
    assert recipe == build.render_recipe(
        "inference",
        component_name=f"{prefix}.Inference",
        component_version=build.inference_version(code),
        artifact_uri=uri,
        model_component_name=f"{prefix}.Model",
    )


def test_gdk_build_refuses_a_version_that_is_not_the_content_hash(tmp_path: Path) -> None:
    folder = _component_folder(tmp_path, "inference")
    config = json.loads((folder / "gdk-config.json").read_text())
    ((_, spec),) = config["component"].items()
    spec["version"] = "NEXT_PATCH"
    (folder / "gdk-config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=re.escape(build.inference_version(build.inference_artifact()))):
        build.gdk_build("inference", folder)
    assert not (folder / "greengrass-build").exists()


def test_gdk_build_refuses_a_model_version_the_pipeline_would_not_publish(tmp_path: Path) -> None:
    folder = _component_folder(tmp_path, "model")
    config = json.loads((folder / "gdk-config.json").read_text())
    ((_, spec),) = config["component"].items()
    spec["version"] = "2.3.4"
    (folder / "gdk-config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=re.escape("1.0.<registry version>")):
        build.gdk_build("model", folder)


def test_gdk_runs_the_command_as_a_script(tmp_path: Path) -> None:
    """As GDK does (the command in the component folder), the project not installed.

    ``-S``: no site-packages hooks, so only the script's own path fix finds ``pipeline``; PyYAML
    alone is on PYTHONPATH.
    """
    folder = _component_folder(tmp_path, "inference")
    yaml_path = str(Path(yaml.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": yaml_path}
    run = subprocess.run(
        [sys.executable, "-S", str(build.COMPONENTS_DIR / "build.py"), "gdk", "inference"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    ((name, spec),) = _gdk_config("inference")["component"].items()
    built = folder / "greengrass-build" / "artifacts" / name / spec["version"] / "inference.zip"
    assert built.read_bytes() == build.inference_artifact()

    (folder / "gdk-config.json").write_text(
        (folder / "gdk-config.json").read_text().replace(spec["version"], "1.0.1")
    )
    stale = subprocess.run(
        [sys.executable, "-S", str(build.COMPONENTS_DIR / "build.py"), "gdk", "inference"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stale.returncode == 1 and spec["version"] in stale.stderr
