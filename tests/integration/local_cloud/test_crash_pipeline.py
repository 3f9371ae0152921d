"""Issue 13 item 2, the whole pipeline: a run, a second run whose endpoint is SIGKILLed mid-way,
and a third run that succeeds with consistent versions.

The runs are the real CLI (`python -m mlops_edge.main run`) on one state directory, as a user
runs them one after another. The second run's endpoint is killed by PID once the run has
registered its model package (version 2) and a random 0-4 s later (seed printed; set
``CRASH_SEED`` to replay), which lands between registering, publishing the components and
deploying them. Before the fix the third run registered version 2 again and reused a component
version whose recipe digest no longer matched the bytes at its artifact URI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_cloud.context import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
GROUP = "mlops-edge-models"


def _command(state: Path, assembly: Any, name: str) -> list[str]:
    return [
        sys.executable, "-m", "mlops_edge.main", "run", "--state-dir", str(state),
        "--cdk-out", str(assembly.directory), "--devices", "1", "--name", name,
        "--hp", "num_round=20", "--timeout", "300",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_EDGE_"))}


def _run(state: Path, assembly: Any, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(state, assembly, name), capture_output=True, text=True, env=_env(), timeout=600
    )


def _client(state: Path, service: str) -> Any:
    endpoint = json.loads((state / "cloud" / "endpoint.json").read_text())["endpoint_url"]
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def _versions(state: Path) -> list[int]:
    listed = _client(state, "sagemaker").list_model_packages(ModelPackageGroupName=GROUP)
    return sorted(int(p["ModelPackageVersion"]) for p in listed["ModelPackageSummaryList"])


def _report(state: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((state / "runs" / name / "report.json").read_text()))


def _run_killed(state: Path, assembly: Any, name: str, delay_s: float) -> int:
    """Start a run, SIGKILL its endpoint `delay_s` after it registered model package version 2."""
    proc = subprocess.Popen(
        _command(state, assembly, name),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(),
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        endpoint_file = state / "cloud" / "endpoint.json"
        while True:
            assert proc.poll() is None, (
                f"the second run ended before registering:\n{proc.communicate()[0][-3000:]}"
            )
            assert time.monotonic() < deadline, "the second run did not register a model package"
            try:
                if endpoint_file.exists() and len(_versions(state)) >= 2:
                    break
            except Exception:
                pass  # the endpoint is starting or the group does not exist yet
            time.sleep(0.2)
        time.sleep(delay_s)
        pid = int(json.loads(endpoint_file.read_text())["pid"])
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(out[-2000:])
    return pid


def _check_components(state: Path) -> None:
    """Every component version's recipe digest matches the bytes now at its artifact URI."""
    gg, s3 = _client(state, "greengrassv2"), _client(state, "s3")
    for component in gg.list_components(scope="PRIVATE")["components"]:
        for version in gg.list_component_versions(arn=component["arn"])["componentVersions"]:
            recipe = json.loads(gg.get_component(arn=version["arn"], recipeOutputFormat="JSON")["recipe"])
            for manifest in recipe.get("Manifests", []):
                for artifact in manifest.get("Artifacts", []):
                    uri = artifact.get("Uri") or artifact.get("URI") or ""
                    if not uri.startswith("s3://") or "Digest" not in artifact:
                        continue
                    bucket, _, key = uri[5:].partition("/")
                    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    assert digest == artifact["Digest"], f"{version['arn']}: {uri} changed under it"


def test_a_run_killed_mid_way_leaves_the_next_run_consistent(tmp_path: Path, cdk_assembly: Any) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    delay_s = random.Random(seed).uniform(0, 4)
    print(f"CRASH_SEED={seed}: the endpoint is killed {delay_s:.2f} s after model package 2 is registered")
    state = tmp_path / "state"

    first = _run(state, assembly=cdk_assembly, name="first")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert _report(state, "first")["model"]["model_package_version"] == 1

    _run_killed(state, cdk_assembly, "second", delay_s)

    third = _run(state, assembly=cdk_assembly, name="third")
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    report = _report(state, "third")
    # version 2 was acknowledged before the kill: it is kept, and the third run registers 3
    assert report["model"]["model_package_version"] == 3, report["model"]
    assert report["verification"]["passed"], report["verification"]
    first_model = _report(state, "first")["components"]["model"]["version"]
    assert report["components"]["model"]["version"] != first_model

    # the registry and the components as the restarted endpoint holds them: nothing lost, no version
    # reused with other bytes
    from local_cloud import LocalCloud

    with LocalCloud(state / "cloud"):
        assert _versions(state) == [1, 2, 3]
        _check_components(state)
