"""`mlops-edge component build` + `component deploy`, the real path: CLI processes, the local cloud's
greengrassv2 control plane, a simulated core process, and an answer over MQTT.

A device runs the model of a registered model package version, deployed by `component deploy
--component model --model-package`; then a *modified* inference build (a marker added to every
answer, in the artifact `component build` wrote) is deployed with `--recipe-dir/--artifact-dir`. The device must answer with the marker, from
the model the first deployment gave it (kept by the second, a thing deployment, which names it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.devices import DeviceFleet
from tests.integration.device.harness import Operator
from tests.unit.ml.helpers import build as build_model

pytestmark = pytest.mark.integration

ANSWER_LINE = '"thing": self.settings.thing,'


def _cli(local_cloud: Any, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_edge.main", "component", *args],
        env={**os.environ, **local_cloud.env()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def edit(artifact: Path, change: Any) -> None:
    """``change(text)`` applied to the inference component's service.py inside ``artifact``."""
    source = zipfile.ZipFile(io.BytesIO(artifact.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "inference_component/service.py":
                data = change(data.decode()).encode()
            target.writestr(info, data)
    artifact.write_bytes(out.getvalue())


def add_marker(artifact: Path, marker: str) -> None:
    """Every successful answer of the inference component in ``artifact`` carries ``dev_marker``."""

    def change(text: str) -> str:
        assert ANSWER_LINE in text, "the answer no longer names the thing: update this test"
        return text.replace(ANSWER_LINE, f'{ANSWER_LINE} "dev_marker": "{marker}",', 1)

    edit(artifact, change)


def _installed(gg: Any, thing: str) -> list[dict[str, Any]]:
    return list(
        gg.list_installed_components(coreDeviceThingName=thing, topologyFilter="ALL")["installedComponents"]
    )


def _register(local_cloud: Any, bucket: str, model_dir: Path, suffix: str) -> str:
    """A model package version as RegisterModel leaves one: the ONNX model and its manifest in S3,
    named (with the model's digest) in the package's customer metadata."""
    s3, sagemaker = local_cloud.client("s3"), local_cloud.client("sagemaker")
    uris = {}
    for name in ("model.onnx", "model.json", "golden.json"):
        s3.upload_file(str(model_dir / name), bucket, f"models/{suffix}/{name}")
        uris[name] = f"s3://{bucket}/models/{suffix}/{name}"
    group = f"component-dev-{suffix}"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return str(
        sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties={
                "onnx_uri": uris["model.onnx"],
                "onnx_sha256": hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest(),
                "manifest_uri": uris["model.json"],
                "golden_uri": uris["golden.json"],
                "task": "regression",
            },
        )["ModelPackageArn"]
    )


def test_component_deploy_of_a_modified_inference_reaches_the_device(
    local_cloud: Any, simulated_devices: DeviceFleet, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    prefix = f"com.example.dev{suffix}"
    bucket = f"component-dev-{suffix}"
    local_cloud.client("s3").create_bucket(Bucket=bucket)
    model = build_model(tmp_path, "diabetes", num_round=10)
    golden = json.loads((model.out_dir / "golden.json").read_text())
    (device,) = simulated_devices.start(1, thing_group=f"component-dev-{suffix}", heartbeat_s=2.0)
    common = ("--thing", device.thing_name, "--bucket", bucket, "--prefix", prefix)

    package = _register(local_cloud, bucket, model.out_dir, suffix)
    first = _cli(local_cloud, "deploy", *common, "--component", "model", "--model-package", package)
    assert first.returncode == 0, (first.stdout, first.stderr, device.log_path.read_text()[-3000:])
    assert f"{prefix}.Model 1.0.1 published" in first.stdout

    out = tmp_path / "build"
    built = _cli(local_cloud, "build", "inference", "--out", str(out), "--prefix", prefix)
    assert built.returncode == 0, built.stderr
    (artifact,) = (out / "artifacts").rglob("inference.zip")
    marker = f"marker-{suffix}"
    add_marker(artifact, marker)
    second = _cli(
        local_cloud,
        "deploy",
        *common,
        "--recipe-dir",
        str(out / "recipes"),
        "--artifact-dir",
        str(out / "artifacts"),
    )
    assert second.returncode == 0, (second.stdout, second.stderr, device.log_path.read_text()[-3000:])
    # the edited artifact is a new dev version, not the one `component build` printed
    built_version = built.stdout.split()[2]
    assert "-dev.g" in built_version and built_version not in second.stdout
    assert f"keeping {prefix}.Model 1.0.1" in second.stdout
    assert f"{prefix}.Inference" in second.stdout and "RUNNING" in second.stdout  # lifecycle shown

    operator = Operator(local_cloud)
    request = {"id": f"dev-{suffix}", "instances": [golden["rows"][0]]}
    try:
        answer = operator.infer(device.thing_name, request, resend_s=1.0, timeout=30)
        assert answer["ok"] is True and answer["dev_marker"] == marker, answer
        assert answer["model"]["version"] == "1.0.1"
        expected = golden["expected"][0]["value"]
        assert abs(answer["predictions"][0]["value"] - expected) <= 1e-3 * max(1.0, abs(expected))

        # A build that cannot start: the deployment fails with the device's reason, and rolls back.
        edit(artifact, lambda text: 'raise SystemExit("broken on purpose")\n' + text)
        broken = _cli(local_cloud, "deploy", *common, "--recipe-dir", str(out / "recipes"),
                      "--artifact-dir", str(out / "artifacts"))  # fmt: skip
        assert broken.returncode == 1, (broken.stdout, broken.stderr)
        assert f"failed on {device.thing_name}" in broken.stderr and "Traceback" not in broken.stderr
        assert "BROKEN" in broken.stdout + broken.stderr, (broken.stdout, broken.stderr)
        # A recipe Greengrass refuses (no RecipeFormatVersion): its error, before any deployment.
        recipe = yaml.safe_load((out / "recipes" / "recipe.yaml").read_text())
        del recipe["RecipeFormatVersion"]
        (out / "recipes" / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        refused = _cli(local_cloud, "deploy", *common, "--recipe-dir", str(out / "recipes"),
                       "--artifact-dir", str(out / "artifacts"))  # fmt: skip
        assert refused.returncode == 1 and "Greengrass refused the recipe" in refused.stderr, refused.stderr
        assert "RecipeFormatVersion" in refused.stderr and "deployment" not in refused.stdout
        request["id"] = f"dev-{suffix}-after"
        after = operator.infer(device.thing_name, request, resend_s=1.0, timeout=30)
        assert after["ok"] is True and after["dev_marker"] == marker, after
    finally:
        operator.close()

    # Handing the device back to its (deployment-less) group removes what this loop gave it.
    reset = _cli(local_cloud, "reset", "--thing", device.thing_name)
    assert reset.returncode == 0, (reset.stdout, reset.stderr)
    assert f"{prefix}.Inference" in reset.stdout and f"{prefix}.Model 1.0.1" in reset.stdout
    gg = local_cloud.client("greengrassv2")
    deadline = time.monotonic() + 15  # the device's fleet-status report may follow its job result
    while (left := _installed(gg, device.thing_name)) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert left == [], left
    again = _cli(local_cloud, "reset", "--thing", device.thing_name)
    assert again.returncode == 0 and "nothing to reset" in again.stdout, again.stdout


def test_component_deploy_errors_are_one_clear_line(local_cloud: Any, tmp_path: Path) -> None:
    unknown = _cli(local_cloud, "deploy", "--thing", f"no-such-{uuid.uuid4().hex[:6]}", "--bucket", "b")
    assert unknown.returncode == 1 and "unknown thing" in unknown.stderr and "Traceback" not in unknown.stderr
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "recipe.yaml").write_text("ComponentName: [unclosed\n")
    bad = _cli(
        local_cloud,
        "deploy",
        "--thing",
        "t",
        "--recipe-dir",
        str(tmp_path / "recipes"),
        "--artifact-dir",
        str(tmp_path),
    )
    assert (
        bad.returncode == 1
        and "not a readable YAML/JSON recipe" in bad.stderr
        and "Traceback" not in bad.stderr
    )
