"""One simulated core (in this process, components as real subprocesses) on the real local cloud."""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.core import Core, CoreSettings, Identity
from edge_runtime.core.components import Cloud
from tests.integration.device.harness import INFERENCE, MODEL, FakeGreengrass, Operator, Publisher
from tests.unit.ml.helpers import build as build_model

pytestmark = pytest.mark.integration


@dataclass
class Bench:
    """Everything a device test touches."""

    local_cloud: Any
    publisher: Publisher
    operator: Operator
    gg: FakeGreengrass
    model_dir: Path
    golden: dict[str, Any]
    thing: str
    identity: Any
    root: Path
    core: Core | None = None

    def start_core(self) -> Core:
        ident = self.identity
        settings = CoreSettings(
            root=self.root,
            identity=Identity(
                ident.thing_name,
                ident.cert_path,
                ident.key_path,
                ident.ca_path,
                ident.mqtt_host,
                ident.mqtt_port,
            ),
            heartbeat_s=2.0,
            deployment_timeout_s=60.0,
            settle_s=1.0,
        )
        self.core = Core(settings, cloud=Cloud(greengrass=self.gg, s3=self.local_cloud.client("s3")))
        self.core.start()
        return self.core

    def stop_core(self) -> None:
        if self.core is not None:
            self.core.stop()
            self.core = None

    def components(self, model_version: str, inference_version: str) -> dict[str, dict[str, Any]]:
        merge = {"PythonPath": sys.executable, "TelemetryIntervalSeconds": 1, "MonitoringWindowSeconds": 1}
        return {
            MODEL: {"version": model_version},
            INFERENCE: {"version": inference_version, "configurationUpdate": {"merge": json.dumps(merge)}},
        }


def _stamp(out_dir: Path, dest: Path, version: str) -> Path:
    """What the pipeline does before packaging: the registry version goes into model.json."""
    shutil.copytree(out_dir, dest)
    manifest = json.loads((dest / "model.json").read_text())
    manifest["model_version"] = version
    (dest / "model.json").write_text(json.dumps(manifest))
    return dest


@pytest.fixture(scope="module")
def bench(local_cloud: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    tmp = tmp_path_factory.mktemp("device")
    built = build_model(tmp / "model", "diabetes", num_round=10)
    s3 = local_cloud.client("s3")
    bucket = f"device-tests-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    gg = FakeGreengrass()
    thing = f"core-{uuid.uuid4().hex[:6]}"
    identity = local_cloud.provision_device(thing, thing_group="test-fleet")
    operator = Operator(local_cloud)
    b = Bench(
        local_cloud=local_cloud,
        publisher=Publisher(s3, bucket, gg),
        operator=operator,
        gg=gg,
        model_dir=_stamp(built.out_dir, tmp / "model-1.0.1", "1.0.1"),
        golden=json.loads((built.out_dir / "golden.json").read_text()),
        thing=thing,
        identity=identity,
        root=tmp / "core-root",
    )
    b.start_core()
    try:
        yield b
    finally:
        b.stop_core()
        operator.close()


@pytest.fixture(scope="module")
def deployed(bench: Bench) -> dict[str, str]:
    """Model 1.0.1 (with its optional files, the training baseline and the accelerated variant, as
    PublishComponents zips it) + the current inference code, deployed and SUCCEEDED."""
    from components import build
    from pipeline.ml.model_files import OPTIONAL_MODEL_FILES

    model = bench.publisher.model(
        bench.model_dir, 1, artifact=build.model_artifact(bench.model_dir, OPTIONAL_MODEL_FILES)
    )
    inference = bench.publisher.inference()
    status = bench.operator.deploy(bench.thing, bench.components(model, inference))
    assert status["status"] == "SUCCEEDED", status
    assert status["statusDetails"]["detailed-deployment-status"] == "SUCCESSFUL"
    return {"model": model, "inference": inference}
