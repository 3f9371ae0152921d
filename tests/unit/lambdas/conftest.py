"""Fixtures for the Lambda core unit tests: in-process moto for S3/IAM-free services, Stubbers for the rest."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.core.configure import configure
from pipeline.config.function_env import Settings

BUCKET = "mlops-edge-test-bucket"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def iot(aws: None) -> Any:
    """moto IoT with the thing group ``edge-fleet`` (empty)."""
    client = boto3.client("iot", region_name="us-east-1")
    client.create_thing_group(thingGroupName="edge-fleet")
    return client


@pytest.fixture
def settings() -> Settings:
    return Settings(
        bucket=BUCKET,
        model_package_group="edge-models",
        thing_group="edge-fleet",
        component_prefix="com.example.test",
        sourcedir_uri=f"s3://{BUCKET}/src/sourcedir.tar.gz",
    )


@pytest.fixture
def config(settings: Settings) -> dict[str, Any]:
    """A normalized config as Configure produces it (no S3 needed: sourcedir is configured)."""
    return copy.deepcopy(
        configure({"input": {}, "execution": "exec-1"}, settings=settings, s3=None)["config"]
    )


def stubbed(service: str) -> tuple[Any, Any]:
    """A client with a botocore Stubber activated (caller asserts ``stub.assert_no_pending_responses``)."""
    from botocore.stub import Stubber

    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.activate()
    return client, stub


def assert_selectable(function: str, result: dict[str, Any]) -> None:
    """Every key the ASL's ResultSelector reads is present (a missing one is an uncatchable error)."""
    from pipeline.statemachine.outputs import RESULT_KEYS

    missing = set(RESULT_KEYS[function]) - set(result)
    assert not missing, f"{function} result lacks {sorted(missing)}"
