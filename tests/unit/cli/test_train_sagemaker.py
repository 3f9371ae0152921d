"""`train --sagemaker` without a cloud: what the submit step is told, and how it reaches an endpoint.

The job itself runs in tests/integration/local_cloud/test_real_clients.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_edge.commands import ml, sagemaker_submit, train_sagemaker

ENDPOINT = "http://127.0.0.1:4566"


def test_metric_definitions_cover_every_metric_train_py_prints() -> None:
    from lambdas.core.configure import METRIC_NAMES

    assert train_sagemaker.METRIC_NAMES == METRIC_NAMES


def test_sts_follows_the_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK pins STS to https://sts.<region>.amazonaws.com; with an endpoint configured it is dropped.
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    session = sagemaker_submit.endpoint_session("us-east-1")
    sts = session.client("sts", region_name="us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com")
    assert sts.meta.endpoint_url == ENDPOINT
    assert session.client("s3").meta.endpoint_url == ENDPOINT


def test_without_an_endpoint_the_sdks_sts_endpoint_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    session = sagemaker_submit.endpoint_session("eu-west-1")
    sts = session.client("sts", region_name="eu-west-1", endpoint_url="https://sts.eu-west-1.amazonaws.com")
    assert sts.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


def test_the_sdks_role_smoke_test_is_off_unless_the_user_asks_for_it() -> None:
    assert sagemaker_submit.sdk_switches({}) == {"SAGEMAKER_VALIDATE_ROLE": "false"}
    assert sagemaker_submit.sdk_switches({"SAGEMAKER_VALIDATE_ROLE": "true"}) == {}


def test_the_sdk_environment_is_set_ups_unless_named() -> None:
    assert train_sagemaker.sdk_python({}).parts[-3:] == ("sagemaker-sdk", "bin", "python")
    assert train_sagemaker.sdk_python({train_sagemaker.SDK_PYTHON_VAR: "/opt/sdk/bin/python"}) == Path(
        "/opt/sdk/bin/python"
    )


def test_a_missing_sdk_environment_says_to_run_setup(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("x,target\n1,2\n")
    result = CliRunner().invoke(
        ml.train,
        ["--sagemaker", "--train", str(tmp_path / "train.csv"), "--role", "r", "--bucket", "b"],
        env={train_sagemaker.SDK_PYTHON_VAR: str(tmp_path / "no-python")},
    )
    assert result.exit_code == 1
    assert "run scripts/setup" in result.output


def test_s3_channels_need_sagemaker(tmp_path: Path) -> None:
    result = CliRunner().invoke(ml.train, ["--train", "s3://bucket/datasets/"])
    assert result.exit_code == 2
    assert "needs --sagemaker" in result.output
