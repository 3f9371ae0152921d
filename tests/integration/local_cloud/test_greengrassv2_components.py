"""greengrassv2 component operations behave as the API reference says (plain boto3)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
import yaml

from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration
ARN = "arn:aws:greengrass:us-east-1:123456789012:components:"


def _recipe(name: str, version: str, uri: str | None = None) -> dict:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentDescription": "test component",
        "ComponentPublisher": "tests",
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "echo hi"}, "Artifacts": []}],
    }
    if uri:
        recipe["Manifests"][0]["Artifacts"] = [{"Uri": uri, "Unarchive": "ZIP"}]
    return recipe


def _state(gg, arn: str) -> str:  # type: ignore[no-untyped-def]
    return gg.describe_component(arn=arn)["status"]["componentState"]


@pytest.fixture
def artifact(local_cloud):  # type: ignore[no-untyped-def]
    s3 = local_cloud.client("s3")
    bucket = f"gg-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    data = b"artifact bytes " + uuid.uuid4().bytes
    s3.put_object(Bucket=bucket, Key="a/model.zip", Body=data)
    return f"s3://{bucket}/a/model.zip", data


def test_create_describe_get_with_digest(local_cloud, artifact) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    uri, data = artifact
    name = f"com.test.C{uuid.uuid4().hex[:6]}"
    created = gg.create_component_version(inlineRecipe=json.dumps(_recipe(name, "1.0.0", uri)).encode())
    assert created["arn"] == f"{ARN}{name}:versions:1.0.0"
    assert created["componentName"] == name and created["componentVersion"] == "1.0.0"
    assert created["status"]["componentState"] == "REQUESTED"
    wait_until(lambda: _state(gg, created["arn"]) == "DEPLOYABLE", timeout=10)
    described = gg.describe_component(arn=created["arn"])
    assert described["publisher"] == "tests" and described["description"] == "test component"
    assert described["platforms"][0]["attributes"] == {"os": "linux"}
    recipe = json.loads(gg.get_component(arn=created["arn"])["recipe"])
    [art] = recipe["Manifests"][0]["Artifacts"]
    assert art["Digest"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert art["Algorithm"] == "SHA-256"
    as_yaml = yaml.safe_load(gg.get_component(arn=created["arn"], recipeOutputFormat="YAML")["recipe"])
    assert as_yaml == recipe


def test_yaml_recipe_versions_listing_and_delete(local_cloud) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name = f"com.test.Y{uuid.uuid4().hex[:6]}"
    for version in ("1.0.0", "1.1.0"):
        gg.create_component_version(inlineRecipe=yaml.safe_dump(_recipe(name, version)).encode())
    versions = gg.list_component_versions(arn=f"{ARN}{name}")["componentVersions"]
    assert sorted(v["componentVersion"] for v in versions) == ["1.0.0", "1.1.0"]
    listed = {c["componentName"]: c for c in gg.list_components()["components"]}
    assert listed[name]["latestVersion"]["componentVersion"] == "1.1.0"
    gg.delete_component(arn=f"{ARN}{name}:versions:1.1.0")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.describe_component(arn=f"{ARN}{name}:versions:1.1.0")
    assert [
        v["componentVersion"] for v in gg.list_component_versions(arn=f"{ARN}{name}")["componentVersions"]
    ] == ["1.0.0"]


def test_errors(local_cloud) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name = f"com.test.E{uuid.uuid4().hex[:6]}"
    gg.create_component_version(inlineRecipe=json.dumps(_recipe(name, "1.0.0")).encode())
    with pytest.raises(gg.exceptions.ConflictException):
        gg.create_component_version(inlineRecipe=json.dumps(_recipe(name, "1.0.0")).encode())
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.describe_component(arn=f"{ARN}com.test.Nope:versions:1.0.0")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.get_component(arn=f"{ARN}com.test.Nope:versions:1.0.0")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.list_component_versions(arn=f"{ARN}com.test.Nope")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.delete_component(arn=f"{ARN}com.test.Nope:versions:1.0.0")
    for bad in ("not-an-arn", f"{ARN}{name}", "arn:aws:s3:::bucket"):
        with pytest.raises(gg.exceptions.ValidationException):
            gg.describe_component(arn=bad)
    with pytest.raises(gg.exceptions.ValidationException):
        gg.create_component_version(inlineRecipe=b"{not: [valid")
    with pytest.raises(gg.exceptions.ValidationException):
        gg.create_component_version(inlineRecipe=json.dumps({"RecipeFormatVersion": "2020-01-25"}).encode())
    with pytest.raises(gg.exceptions.ValidationException):
        gg.create_deployment(targetArn="arn:aws:iot:us-east-1:123456789012:bucket/x", components={})
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.get_deployment(deploymentId=str(uuid.uuid4()))
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.get_core_device(coreDeviceThingName="never-seen")


def test_missing_artifact_fails_component(local_cloud) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name = f"com.test.M{uuid.uuid4().hex[:6]}"
    uri = "s3://no-such-bucket-for-gg/missing.zip"
    arn = gg.create_component_version(inlineRecipe=json.dumps(_recipe(name, "1.0.0", uri)).encode())["arn"]
    wait_until(lambda: _state(gg, arn) == "FAILED", timeout=10)
    status = gg.describe_component(arn=arn)["status"]
    assert uri in status["message"] and uri in status["errors"]


def test_resolve_component_candidates_with_ranges(local_cloud) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name = f"com.test.R{uuid.uuid4().hex[:6]}"
    for version in ("1.0.0", "1.2.3", "2.0.0"):
        arn = gg.create_component_version(inlineRecipe=json.dumps(_recipe(name, version)).encode())["arn"]
    wait_until(lambda: _state(gg, arn) == "DEPLOYABLE", timeout=10)
    platform = {"name": "linux", "attributes": {"os": "linux", "architecture": "amd64"}}

    def resolve(**candidate: object) -> str:
        out = gg.resolve_component_candidates(
            platform=platform, componentCandidates=[{"componentName": name, **candidate}]
        )
        [resolved] = out["resolvedComponentVersions"]
        assert json.loads(resolved["recipe"])["ComponentVersion"] == resolved["componentVersion"]
        return resolved["componentVersion"]

    assert resolve(componentVersion="1.2.3", versionRequirements={"dep": ">=1.0.0 <2.0.0"}) == "1.2.3"
    assert resolve(versionRequirements={"dep": "^1.0.0"}) == "1.2.3"
    assert resolve(versionRequirements={"a": ">=1.0.0", "b": "<1.2.0"}) == "1.0.0"
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        resolve(componentVersion="2.0.0", versionRequirements={"dep": "~1.2.0"})
