"""components/build.py: deterministic artifacts, versions, recipes valid the way GDK checks them."""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from components import build
from pipeline.archive import deterministic_zip

HERE = Path(__file__).parent
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
        "edge/{iot:thingName}/telemetry",
    ]
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
