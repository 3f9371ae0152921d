"""PublishComponents / CheckComponents: versions from registry and content, idempotence, digests."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import boto3
import pytest

from lambdas.core.components import check_components, publish_components
from lambdas.core.exceptions import ArtifactConflict, ComponentFailed

from .conftest import BUCKET, assert_selectable
from .fakes import FakeGreengrass

ONNX = b"fake onnx bytes"


@pytest.fixture
def event(s3: Any, config: dict[str, Any]) -> dict[str, Any]:
    prefix = "artifacts/models/j/abc/"
    s3.put_object(Bucket=BUCKET, Key=prefix + "model.onnx", Body=ONNX)
    s3.put_object(
        Bucket=BUCKET, Key=prefix + "model.json", Body=json.dumps({"format_version": 1, "task": "regression"})
    )
    model = {
        "onnx_uri": f"s3://{BUCKET}/{prefix}model.onnx",
        "manifest_uri": f"s3://{BUCKET}/{prefix}model.json",
        "golden_uri": f"s3://{BUCKET}/{prefix}golden.json",
        "sha256": hashlib.sha256(ONNX).hexdigest(),
        "task": "regression",
    }
    registry = {
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/3",
        "model_package_version": 3,
        "model": model,
    }
    return {"config": config, "registry": registry}


def sts() -> Any:
    return boto3.client("sts", region_name="us-east-1")


def test_first_publish_creates_both_versions(event: dict[str, Any], s3: Any) -> None:
    gg = FakeGreengrass()
    out = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    assert_selectable("publish_components", out)
    assert out["deployable"] is True
    assert out["model"]["name"] == "com.example.test.Model" and out["model"]["version"] == "1.0.3"
    assert out["inference"]["version"].startswith("1.0.") and not out["inference"]["reused"]
    assert [r["ComponentName"] for r in gg.recipes] == [
        "com.example.test.Model",
        "com.example.test.Inference",
    ]
    inference_recipe = gg.recipes[1]
    assert inference_recipe["ComponentDependencies"] == {
        "com.example.test.Model": {"VersionRequirement": ">=1.0.0 <2.0.0", "DependencyType": "HARD"}
    }
    key = out["model"]["artifact_uri"].split("/", 3)[3]
    assert key == "artifacts/components/com.example.test.Model/1.0.3/model.zip"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == out["model"]["sha256"]
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("model.json"))
    assert manifest["model_version"] == "1.0.3" and manifest["model_package_arn"].endswith("/g/3")


def test_republish_reuses_identical_versions(event: dict[str, Any], s3: Any) -> None:
    gg = FakeGreengrass()
    first = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    second = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    assert second["model"]["reused"] and second["inference"]["reused"]
    assert second["inference"]["version"] == first["inference"]["version"]
    assert len(gg.recipes) == 2


def test_new_model_version_ships_the_model_alone(event: dict[str, Any], s3: Any) -> None:
    gg = FakeGreengrass()
    first = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    event["registry"]["model_package_version"] = 4
    second = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    assert second["model"]["version"] == "1.0.4" and not second["model"]["reused"]
    assert second["inference"]["reused"] and second["inference"]["version"] == first["inference"]["version"]


def test_tampered_onnx_is_refused(event: dict[str, Any], s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="artifacts/models/j/abc/model.onnx", Body=b"tampered")
    with pytest.raises(ArtifactConflict, match="changed after registration"):
        publish_components(event, s3=s3, greengrass=FakeGreengrass(), sts=sts())


def test_requested_then_deployable(event: dict[str, Any], s3: Any) -> None:
    gg = FakeGreengrass(initial_state="REQUESTED")
    out = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    assert out["deployable"] is False
    for component in gg.components.values():
        component["state"] = "DEPLOYABLE"
    checked = check_components({**event, "components": out}, greengrass=gg)
    assert_selectable("check_components", checked)
    assert checked["deployable"] is True


def test_failed_component_raises_with_reason(event: dict[str, Any], s3: Any) -> None:
    gg = FakeGreengrass(initial_state="REQUESTED")
    out = publish_components(event, s3=s3, greengrass=gg, sts=sts())
    next(iter(gg.components.values()))["state"] = "FAILED"
    with pytest.raises(ComponentFailed, match="FAILED"):
        check_components({"components": out}, greengrass=gg)


def test_immutable_put_loses_a_race_gracefully(s3: Any) -> None:
    """The conditional write refuses a key another writer created between our HEAD and PUT."""
    from lambdas.core.aws import put_immutable

    class Racing:
        def __init__(self, inner: Any, data: bytes) -> None:
            self.inner, self.data, self.raced = inner, data, False

        def head_object(self, **kw: Any) -> Any:
            return self.inner.head_object(**kw)

        def put_object(self, **kw: Any) -> Any:
            if not self.raced:
                self.raced = True
                put_immutable(self.inner, kw["Bucket"], kw["Key"], self.data, content_type="x")
            return self.inner.put_object(**kw)

    assert put_immutable(Racing(s3, b"same"), BUCKET, "race/a", b"same", content_type="x") == (
        hashlib.sha256(b"same").hexdigest(),
        True,
    )
    with pytest.raises(ArtifactConflict):
        put_immutable(Racing(s3, b"other"), BUCKET, "race/b", b"mine", content_type="x")


class _OldBotocoreS3:
    """The S3 client of a botocore older than 1.35 (what a managed runtime may carry): its
    PutObject model has no IfNoneMatch, so passing it fails validation before any request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        model = inner.meta.service_model.operation_model("PutObject").input_shape
        members = {k: v for k, v in model.members.items() if k != "IfNoneMatch"}
        shape = type("Shape", (), {"members": members})()
        operation = type("Operation", (), {"input_shape": shape})()
        service = type("Service", (), {"operation_model": lambda self, name: operation})()
        self.meta = type("Meta", (), {"service_model": service})()

    def head_object(self, **kw: Any) -> Any:
        return self.inner.head_object(**kw)

    def put_object(self, **kw: Any) -> Any:
        if "IfNoneMatch" in kw:
            from botocore.exceptions import ParamValidationError

            raise ParamValidationError(report='Unknown parameter in input: "IfNoneMatch"')
        return self.inner.put_object(**kw)


def test_immutable_put_works_on_a_botocore_without_conditional_writes(s3: Any) -> None:
    from lambdas.core.aws import put_immutable, supports_conditional_put

    old = _OldBotocoreS3(s3)
    assert supports_conditional_put(s3) and not supports_conditional_put(old)
    digest = hashlib.sha256(b"model").hexdigest()
    assert put_immutable(old, BUCKET, "old/a", b"model", content_type="x") == (digest, False)
    assert put_immutable(old, BUCKET, "old/a", b"model", content_type="x") == (digest, True)
    with pytest.raises(ArtifactConflict):
        put_immutable(old, BUCKET, "old/a", b"other", content_type="x")


STATISTICS = b'{"version": 0, "dataset": {"item_count": 3}, "features": []}'
CONSTRAINTS = b'{"version": 0, "features": []}'


@pytest.fixture
def with_baseline(event: dict[str, Any], s3: Any) -> dict[str, Any]:
    """The registry's model with the baseline files registered beside model.onnx."""
    files = {}
    for name, body in (("baseline/statistics.json", STATISTICS), ("baseline/constraints.json", CONSTRAINTS)):
        s3.put_object(Bucket=BUCKET, Key=f"artifacts/models/j/abc/{name}", Body=body)
        files[name] = {
            "uri": f"s3://{BUCKET}/artifacts/models/j/abc/{name}",
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    event["registry"]["model"]["files"] = files
    event["config"]["dataset"]["train"] = f"s3://{BUCKET}/datasets/train/"
    return event


def test_model_zip_carries_the_baseline_and_monitoring_files_are_written(
    with_baseline: dict[str, Any], s3: Any
) -> None:
    out = publish_components(with_baseline, s3=s3, greengrass=FakeGreengrass(), sts=sts())
    body = s3.get_object(Bucket=BUCKET, Key=out["model"]["artifact_uri"].split("/", 3)[3])["Body"].read()
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert sorted(archive.namelist()) == [
        "baseline/constraints.json",
        "baseline/statistics.json",
        "model.json",
        "model.onnx",
    ]
    assert archive.read("baseline/statistics.json") == STATISTICS
    prefix = "state/monitoring/1.0.3/"
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "baseline/statistics.json")["Body"].read() == STATISTICS
    assert (
        s3.get_object(Bucket=BUCKET, Key=prefix + "baseline/constraints.json")["Body"].read() == CONSTRAINTS
    )
    context = json.loads(s3.get_object(Bucket=BUCKET, Key=prefix + "context.json")["Body"].read())
    assert context["model_version"] == "1.0.3" and context["model_package_arn"].endswith("/g/3")
    assert context["model_name"] == "com.example.test.Model" and context["source_execution"] == "exec-1"
    assert context["dataset"]["train"] == f"s3://{BUCKET}/datasets/train/"
    assert context["input"] == with_baseline["config"]["input"]  # what a retraining reuses
    assert context["monitoring"]["window_s"] == with_baseline["config"]["monitoring"]["window_s"]
    hps = context["hyperparameters"]
    assert isinstance(hps["num_round"], int) and isinstance(hps["eta"], float)
    assert "sagemaker_program" not in hps


def test_tampered_baseline_is_refused(with_baseline: dict[str, Any], s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="artifacts/models/j/abc/baseline/statistics.json", Body=b"{}")
    with pytest.raises(ArtifactConflict, match="changed after registration"):
        publish_components(with_baseline, s3=s3, greengrass=FakeGreengrass(), sts=sts())


def test_deploy_only_keeps_the_training_context(with_baseline: dict[str, Any], s3: Any) -> None:
    publish_components(with_baseline, s3=s3, greengrass=FakeGreengrass(), sts=sts())
    config = with_baseline["config"]
    config.update(model_package_arn=with_baseline["registry"]["model_package_arn"], execution="exec-2")
    config["training"] = {"job_name": "x"}
    publish_components(with_baseline, s3=s3, greengrass=FakeGreengrass(), sts=sts())
    context = json.loads(
        s3.get_object(Bucket=BUCKET, Key="state/monitoring/1.0.3/context.json")["Body"].read()
    )
    assert context["source_execution"] == "exec-1" and context["hyperparameters"]["num_round"]


def test_model_without_baseline_ships_the_model_alone(event: dict[str, Any], s3: Any) -> None:
    out = publish_components(event, s3=s3, greengrass=FakeGreengrass(), sts=sts())
    body = s3.get_object(Bucket=BUCKET, Key=out["model"]["artifact_uri"].split("/", 3)[3])["Body"].read()
    assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["model.json", "model.onnx"]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="state/monitoring/1.0.3/baseline/")
