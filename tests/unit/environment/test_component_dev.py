"""component_dev without a cloud: dev versions, build directories, the deployment plan, the watch.

The real path (CLI -> local cloud -> simulated core -> MQTT) is
tests/integration/device/test_component_dev.py; these pin the rules it relies on.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from click.testing import CliRunner

from mlops_edge.environment.component_dev import ComponentDevError, build_component, dev_version, load_build
from mlops_edge.environment.component_dev import deploy as dev_deploy
from mlops_edge.environment.component_dev.build import component_names

RECIPE = {
    "RecipeFormatVersion": "2020-01-25",
    "ComponentName": "com.example.X",
    "ComponentVersion": "1.0.7",
    "ComponentConfiguration": {"DefaultConfiguration": {"A": 1}},
    "Manifests": [{"Artifacts": [{"URI": "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/x.zip"}]}],
}


def test_dev_version_follows_the_content_of_recipe_and_artifacts() -> None:
    base = dev_version(RECIPE, {"x.zip": b"code"})
    assert base.startswith("1.0.7-dev.g") and len(base.split(".g")[1]) == 10
    moved = copy.deepcopy(RECIPE)
    moved["Manifests"][0]["Artifacts"][0]["URI"] = "s3://bucket/elsewhere/x.zip"
    moved["ComponentVersion"] = base  # a recipe already under its dev version: the same build
    assert dev_version(moved, {"x.zip": b"code"}) == base
    assert dev_version(RECIPE, {"x.zip": b"code2"}) != base
    changed = copy.deepcopy(RECIPE)
    changed["ComponentConfiguration"]["DefaultConfiguration"]["A"] = 2
    assert dev_version(changed, {"x.zip": b"code"}) != base
    with pytest.raises(ComponentDevError, match="not a semantic version"):
        dev_version({**RECIPE, "ComponentVersion": "one"}, {})


def test_build_inference_writes_gdk_layout_under_a_dev_version(tmp_path: Path) -> None:
    from components import build

    built = build_component("inference", out_dir=tmp_path, prefix="com.example.t")
    release = build.inference_version(build.inference_artifact())
    assert built.name == "com.example.t.Inference" and built.version.startswith(f"{release}-dev.g")
    recipe = yaml.safe_load((tmp_path / "recipes" / "recipe.yaml").read_text())
    assert recipe["ComponentVersion"] == built.version
    assert recipe["ComponentDependencies"] == {
        "com.example.t.Model": {"VersionRequirement": ">=1.0.0 <2.0.0", "DependencyType": "HARD"}
    }
    artifact = tmp_path / "artifacts" / built.name / built.version / "inference.zip"
    assert zipfile.ZipFile(artifact).read("inference_component/service.py")
    again = load_build(tmp_path / "recipes", tmp_path / "artifacts")
    assert again.version == built.version and again.artifacts == built.artifacts


def test_an_edited_build_is_a_new_version(tmp_path: Path) -> None:
    built = build_component("inference", out_dir=tmp_path)
    (artifact,) = (tmp_path / "artifacts").rglob("inference.zip")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("inference_component/__init__.py", "edited")
    artifact.write_bytes(out.getvalue())
    edited = load_build(tmp_path / "recipes", tmp_path / "artifacts")
    assert edited.name == built.name and edited.version != built.version
    assert edited.version.split("-dev.")[0] == built.version.split("-dev.")[0]


def test_model_builds_keep_their_release_version(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"onnx")
    (model / "model.json").write_text(json.dumps({"model_version": "1.0.3"}))
    (model / "baseline").mkdir()
    (model / "baseline" / "statistics.json").write_text("{}")
    built = build_component("model", out_dir=tmp_path / "out", model_dir=model)
    assert built.version == "1.0.3" and built.name == component_names()["model"]
    # the same files PublishComponents ships: the drift baseline rides along when it was exported
    (artifact,) = (tmp_path / "out" / "artifacts").rglob("model.zip")
    with zipfile.ZipFile(artifact) as z:
        assert sorted(z.namelist()) == ["baseline/statistics.json", "model.json", "model.onnx"]
    with pytest.raises(ComponentDevError, match=r"1\.0\.<registry version>"):
        build_component("model", out_dir=tmp_path / "o2", model_dir=model, model_version="1.0.0-dev.x")
    (model / "model.json").write_text("{}")
    with pytest.raises(ComponentDevError, match="no model_version"):
        build_component("model", out_dir=tmp_path / "o3", model_dir=model)
    with pytest.raises(ComponentDevError, match=r"model\.onnx"):
        build_component("model", out_dir=tmp_path / "o4", model_dir=tmp_path / "nothing")


def test_bad_build_directories_say_what_is_wrong(tmp_path: Path) -> None:
    recipes, artifacts = tmp_path / "recipes", tmp_path / "artifacts"
    with pytest.raises(ComponentDevError, match="no such directory"):
        load_build(recipes, artifacts)
    recipes.mkdir()
    artifacts.mkdir()
    with pytest.raises(ComponentDevError, match="no recipe"):
        load_build(recipes, artifacts)
    (recipes / "a.yaml").write_text("- a list\n")
    with pytest.raises(ComponentDevError, match="not a recipe"):
        load_build(recipes, artifacts)
    (recipes / "a.yaml").write_text(yaml.safe_dump(RECIPE))
    with pytest.raises(ComponentDevError, match=r"no x\.zip"):
        load_build(recipes, artifacts)
    (artifacts / "x.zip").write_bytes(b"z")
    assert load_build(recipes, artifacts).artifacts == {"x.zip": b"z"}
    (recipes / "b.json").write_text(json.dumps({**RECIPE, "ComponentName": "com.example.Y"}))
    with pytest.raises(ComponentDevError, match="several recipes"):
        load_build(recipes, artifacts)


def _not_found(op: str) -> ClientError:
    return ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "nope"}}, op)


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self.pages


class FakeIot:
    def __init__(self, groups: list[str], known: bool = True) -> None:
        self.groups, self.known = groups, known

    def describe_thing(self, thingName: str) -> dict[str, Any]:
        if not self.known:
            raise _not_found("DescribeThing")
        return {"thingArn": f"arn:aws:iot:us-east-1:1:thing/{thingName}"}

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_thing_groups_for_thing"
        return _Pages([{"thingGroups": [{"groupName": g, "groupArn": f"arn:g/{g}"} for g in self.groups]}])


class FakeGreengrass:
    def __init__(self, installed: dict[str, str], group_components: dict[str, str] | None = None) -> None:
        self.installed = {
            n: {"componentName": n, "componentVersion": v, "lifecycleState": "RUNNING"}
            for n, v in installed.items()
        }
        self.group_components = group_components or {}
        self.effective: list[list[dict[str, Any]]] = []
        self.registered = True

    def get_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        if not self.registered:
            raise _not_found("GetCoreDevice")
        return {"status": "HEALTHY", "lastStatusUpdateTimestamp": None}

    def list_deployments(self, **_: Any) -> dict[str, Any]:
        return {"deployments": [{"deploymentId": "g1", "deploymentStatus": "ACTIVE"}]}

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        return {"components": {n: {"componentVersion": v} for n, v in self.group_components.items()}}

    def get_paginator(self, name: str) -> _Pages:
        if name == "list_installed_components":
            return _Pages([{"installedComponents": list(self.installed.values())}])
        assert name == "list_effective_deployments"
        page = self.effective.pop(0) if len(self.effective) > 1 else (self.effective or [[]])[0]
        return _Pages([{"effectiveDeployments": page}])


def test_plan_keeps_what_the_device_runs_except_what_groups_give_it() -> None:
    gg = FakeGreengrass(
        {"c.Model": "1.0.1", "c.Inference": "1.0.5", "aws.greengrass.Nucleus": "2.12.0", "g.Tool": "2.0.0"},
        group_components={"g.Tool": "2.0.0"},
    )
    plan = dev_deploy.plan(
        iot=FakeIot(["fleet"]),
        greengrass=gg,
        thing="t1",
        name="c.Inference",
        version="1.0.5-dev.gabc",
        merge={"A": 1},
    )
    assert plan.thing_arn.endswith("thing/t1") and plan.kept == {"c.Model": "1.0.1"}
    assert plan.spec == {
        "c.Model": {"componentVersion": "1.0.1"},
        "c.Inference": {"componentVersion": "1.0.5-dev.gabc", "configurationUpdate": {"merge": '{"A": 1}'}},
    }


def test_plan_refuses_what_greengrass_would_fail() -> None:
    gg = FakeGreengrass({}, group_components={"c.Inference": "1.0.5"})
    with pytest.raises(ComponentDevError, match=r"thing group 'fleet'.*deploys c.Inference 1.0.5"):
        dev_deploy.plan(
            iot=FakeIot(["fleet"]), greengrass=gg, thing="t1", name="c.Inference", version="1.0.6"
        )
    same = dev_deploy.plan(
        iot=FakeIot(["fleet"]), greengrass=gg, thing="t1", name="c.Inference", version="1.0.5"
    )
    assert same.already_from == "fleet" and same.spec == {}
    with pytest.raises(ComponentDevError, match="unknown thing"):
        dev_deploy.plan(iot=FakeIot([], known=False), greengrass=gg, thing="t1", name="c.X", version="1.0.1")
    gg.registered = False
    with pytest.raises(ComponentDevError, match="never connected"):
        dev_deploy.plan(iot=FakeIot([]), greengrass=gg, thing="t1", name="c.X", version="1.0.1")


def _effective(status: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"deploymentId": "d1", "coreDeviceExecutionStatus": status, "modifiedTimestamp": 1.0, **extra}]


def test_watch_shows_the_states_and_ends_with_the_device_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_deploy, "POLL_S", 0.0)
    gg = FakeGreengrass({"c.Inference": "1.0.5"})
    gg.effective = [_effective("QUEUED"), _effective("IN_PROGRESS"), _effective("SUCCEEDED")]
    lines: list[str] = []
    assert dev_deploy.watch(gg, "t1", "d1", log=lines.append)["status"] == "SUCCEEDED"
    assert [line.split(None, 1)[1] for line in lines] == [
        "deployment IN_PROGRESS (QUEUED)",
        "deployment IN_PROGRESS",
        "deployment SUCCEEDED",
    ]
    gg.effective = [_effective("FAILED", reason="c.Inference is BROKEN")]
    failed = dev_deploy.watch(gg, "t1", "d1", log=lines.append)
    assert failed["status"] == "FAILED" and "c.Inference is BROKEN" in failed["detail"]
    assert lines[-1].split(None, 1)[1] == f"deployment {failed['detail']}" and failed["detail"].startswith(
        "FAILED"
    )


def test_watch_reports_a_device_that_never_picks_the_deployment_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev_deploy, "POLL_S", 0.01)
    gg = FakeGreengrass({})
    gg.effective = [_effective("QUEUED")]
    with pytest.raises(ComponentDevError, match=r"looks offline.*cancel-deployment --deployment-id d1"):
        dev_deploy.watch(gg, "t1", "d1", log=lambda _: None, offline_after_s=0.05)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe-dir", "."], "go together"),
        (["--model-package", "arn:x", "--recipe-dir", ".", "--artifact-dir", "."], "exclude each other"),
        (["--component", "model", "--model-package", "arn:x"], "not a model package version ARN"),
        (["--model-dir", ".", "--component", "inference"], "not --component inference"),
        (["--model-package", "arn:x"], "not a model package version ARN"),
        (["--component", "model"], "needs --model-package"),
        (["--merge", "[1]"], "JSON object"),
        (["--merge", "{"], "not JSON"),
    ],
)
def test_deploy_options_are_checked_before_any_call(args: list[str], message: str) -> None:
    from mlops_edge.commands.component import component

    result = CliRunner().invoke(
        component, ["deploy", "--thing", "t", *args], env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    )
    assert result.exit_code == 1 and message in result.output, result.output


def test_only_a_local_endpoint_gets_this_interpreter_as_python_path() -> None:
    import sys

    from mlops_edge.commands.component import _local_defaults

    local = "http://127.0.0.1:4610"
    assert _local_defaults({}, "inference", local) == {"PythonPath": sys.executable}
    assert _local_defaults({"PythonPath": "/opt/py"}, "inference", local) == {"PythonPath": "/opt/py"}
    assert _local_defaults({}, "model", local) is None
    assert _local_defaults({}, "inference", "https://greengrass.us-east-1.amazonaws.com") is None
    assert _local_defaults({"A": 1}, "inference", None) == {"A": 1}


class _Stacks:
    def __init__(self, stacks: list[dict[str, Any]]) -> None:
        self.stacks = stacks

    def get_paginator(self, name: str) -> _Pages:
        assert name == "describe_stacks"
        return _Pages([{"Stacks": self.stacks}])


def test_the_artifact_bucket_is_the_pipeline_stacks_or_given() -> None:
    from mlops_edge.environment.component_dev.publish import find_bucket

    pipeline = {"StackName": "P", "Outputs": [{"OutputKey": "ArtifactBucketName", "OutputValue": "b1"}]}
    other = {"StackName": "O", "Outputs": [{"OutputKey": "Else", "OutputValue": "x"}]}
    assert find_bucket(_Stacks([other, pipeline])) == "b1"
    with pytest.raises(ComponentDevError, match="pass --bucket"):
        find_bucket(_Stacks([other]))
    with pytest.raises(ComponentDevError, match=r"several pipeline stacks found: P \(b1\), Q \(b2\)"):
        second = {"StackName": "Q", "Outputs": [{"OutputKey": "ArtifactBucketName", "OutputValue": "b2"}]}
        find_bucket(_Stacks([pipeline, second]))


def test_reset_plans_an_empty_thing_deployment_naming_what_goes() -> None:
    gg = FakeGreengrass({"c.Inference": "1.0.5-dev.gabc"}, group_components={"c.Inference": "1.0.5-dev.gabc"})
    plan = dev_deploy.reset_plan(iot=FakeIot([]), greengrass=gg, thing="t1")
    assert plan.spec == {} and plan.kept == {"c.Inference": "1.0.5-dev.gabc"}


def test_a_control_plane_that_keeps_failing_is_one_line_not_a_traceback() -> None:
    from botocore.exceptions import EndpointConnectionError

    from mlops_edge.environment.component_dev.build import Built
    from mlops_edge.environment.component_dev.publish import publish

    class DownSts:
        def get_caller_identity(self) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    built = Built("inference", dict(RECIPE), {"x.zip": b"z"})
    with pytest.raises(ComponentDevError, match=r"GetCallerIdentity.*127\.0\.0\.1:9"):
        publish(built, greengrass=object(), s3=object(), sts=DownSts(), bucket="b")
