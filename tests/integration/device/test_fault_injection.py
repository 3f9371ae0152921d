"""The fault switch of ``mlops-edge run --fail-devices`` (for demonstrations and tests): a core
started with it fails the deployment that installs a component, naming the switch as the reason."""

from __future__ import annotations

import json

import pytest

from edge_runtime.core.lifecycle.steps import FAULT_FAIL_INSTALL_ENV
from tests.integration.device.conftest import Bench
from tests.integration.device.harness import INFERENCE

pytestmark = pytest.mark.integration


def test_fault_switch_fails_the_install_and_the_deployment_says_why(
    bench: Bench, deployed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the in-process core reads the switch from its environment at each Install, as a device
    # process started with it by mlops_edge.environment.fleet does
    monkeypatch.setenv(FAULT_FAIL_INSTALL_ENV, "*")
    version = bench.publisher.model(bench.model_dir, 7)  # a new model reinstalls the inference component
    status = bench.operator.deploy(bench.thing, bench.components(version, deployed["inference"]))

    assert status["status"] == "FAILED", status
    cause = status["statusDetails"]["deployment-failure-cause"]
    assert INFERENCE in cause and f"fault injected by {FAULT_FAIL_INSTALL_ENV}" in cause, cause
    assert "COMPONENT_BROKEN" in json.loads(status["statusDetails"]["deployment-error-stack"])
    log = (bench.root / "logs" / f"{INFERENCE}.log").read_text()
    assert "install: not run, fault injected" in log
