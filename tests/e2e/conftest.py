"""One local cloud, the pipeline stack deployed on it exactly as `mlops-edge run` does, two devices.

Module-scoped and separate from the integration tests' cloud, so the fixed names the pipeline is
deployed under (thing group, registry, state machine) cannot collide with theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_cloud import LocalCloud
from mlops_edge.environment.deploy import LocalPipeline, deploy_pipeline
from mlops_edge.environment.fleet import Fleet
from mlops_edge.environment.run_data import RunData, demo_data

DEVICES = 2


@dataclass
class Stage:
    cloud: LocalCloud
    pipeline: LocalPipeline
    fleet: Fleet
    data: RunData
    state_dir: Path

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    @property
    def things(self) -> list[str]:
        return [d.thing_name for d in self.fleet.devices]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, cdk_assembly: Any) -> Iterator[Stage]:
    state_dir = tmp_path_factory.mktemp("e2e")
    saved = dict(os.environ)
    with LocalCloud(state_dir / "cloud") as cloud:
        env = cloud.env()
        os.environ.update(env)  # pipeline.aws.client() reads the endpoint from the environment
        fleet: Fleet | None = None
        try:
            pipeline = deploy_pipeline(
                cache_dir=state_dir / "cache",
                verifier=cloud.pipeline_identity,
                cdk_out=cdk_assembly.directory,
            )
            fleet = Fleet(cloud, root=state_dir / "devices", thing_group=pipeline.thing_group, env=env)
            fleet.start(DEVICES)
            missing = fleet.wait_reported(cloud.client("greengrassv2"), timeout_s=60)
            assert not missing, f"devices did not report: {missing}"
            yield Stage(cloud, pipeline, fleet, demo_data("diabetes", state_dir / "data"), state_dir)
        finally:
            if fleet is not None:
                fleet.stop()
            os.environ.clear()
            os.environ.update(saved)
