"""Per-environment settings: context, then environment, then defaults (no synthesis needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.app import REPO_ROOT
from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

pytestmark = pytest.mark.infra


def _getter(values: dict):
    return values.get


def test_defaults_synthesize_without_account() -> None:
    config = EdgeConfig.from_context(_getter({}), environ={})
    assert config.account == "" and config.region == ""
    assert config.state_machine_name == "mlops-edge-pipeline"  # what pipeline/cli finds by name
    assert config.tes_role_alias_name == "mlops-edge-fleet-TokenExchangeRoleAlias"


def test_context_wins_over_environment_then_defaults() -> None:
    env = {
        "MLOPS_EDGE_THING_GROUP_NAME": "from-env",
        "MLOPS_EDGE_INSTANCE_TYPE": "t3.medium",
        "CDK_DEFAULT_REGION": "eu-west-1",
    }
    config = EdgeConfig.from_context(
        _getter({"thing_group_name": "from-context", "log_retention_days": "14"}), environ=env
    )
    assert config.thing_group_name == "from-context"
    assert config.instance_type == "t3.medium"
    assert config.region == "eu-west-1"
    assert config.log_retention_days == 14


@pytest.mark.parametrize(
    "context",
    [{"source": "svn"}, {"repository": "no-owner"}, {"component_prefix": "com.example."}],
)
def test_bad_values_fail_early_with_the_setting_name(context: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(context))):
        EdgeConfig.from_context(_getter(context), environ={})


def test_cdk_json_context_covers_every_setting() -> None:
    context = load_cdk_json_context(REPO_ROOT / "cdk.json")
    fields = set(EdgeConfig.__dataclass_fields__) - {"account", "region", "tags"}
    assert fields <= set(context), sorted(fields - set(context))
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"].endswith("app.py")
    EdgeConfig.from_context(context.get, environ={})


def test_user_data_is_idempotent_and_pins_the_release() -> None:
    from infra.nucleus_install import nucleus_user_data

    kwargs = {
        "region": "eu-west-1",
        "thing_name": "core-1",
        "thing_group_name": "fleet",
        "thing_policy_name": "fleet-core-policy",
        "tes_role_name": "fleet-TokenExchangeRole",
        "tes_role_alias_name": "fleet-TokenExchangeRoleAlias",
    }
    latest = nucleus_user_data(nucleus_version="latest", **kwargs)
    pinned = nucleus_user_data(nucleus_version="2.14.3", **kwargs)
    assert latest.startswith("#!/bin/bash\nset -euxo pipefail")
    assert "greengrass-nucleus-latest.zip" in latest and "greengrass-2.14.3.zip" in pinned
    assert "already installed" in latest  # a reboot does not reinstall or re-provision
    assert "--aws-region eu-west-1" in latest
    # {iot:thingName} in the inference component's accessControl needs configuration interpolation.
    assert "interpolateComponentConfiguration: true" in latest
    assert "--init-config /opt/greengrass-installer/config.yaml" in latest


def _account_bound_edge_synth(config: EdgeConfig) -> dict:
    """The manifest of an account-bound synth of the edge stack alone (as in CodeBuild)."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from infra.edge_core_stack import EdgeCoreStack

    env = cdk.Environment(account="123456789012", region="eu-west-1")
    app = cdk.App(context=load_cdk_json_context(REPO_ROOT / "cdk.json"))
    holder = cdk.Stack(app, "Holder", env=env)
    EdgeCoreStack(app, "Edge", config=config, artifact_bucket=s3.Bucket(holder, "Bucket"), env=env)
    return json.loads((Path(app.synth().directory) / "manifest.json").read_text())


def test_account_bound_synth_needs_no_context_lookup_but_the_ami() -> None:
    """With an account and region (as in CodeBuild), nothing may need `cdk` lookups but the
    core's AMI, looked up once and then kept in cdk.context.json (no VPC or AZ lookup: the build
    role cannot assume the lookup role, and synth stays offline); a pinned AMI needs none."""
    assert not _account_bound_edge_synth(EdgeConfig(ami_id="ami-0123456789abcdef0")).get("missing")
    (missing,) = _account_bound_edge_synth(EdgeConfig())["missing"]
    assert missing["provider"] == "ssm"
    assert missing["props"]["parameterName"].startswith("/aws/service/ami-amazon-linux-latest/al2023-ami-")


def test_settings_round_trip_through_cli_context() -> None:
    """What the CI/CD stack records (``to_context``) reads back as the same settings."""
    config = EdgeConfig(
        thing_group_name="plant-7",
        verifier_certificate_arn="arn:aws:iot:eu-west-1:123456789012:cert/abc",
        ami_id="ami-0123456789abcdef0",
        log_retention_days=14,
        tags={"project": "mlops-edge", "owner": "ops team"},
    )
    context = config.to_context()
    assert all(isinstance(v, str) for v in context.values())  # what `-c key=value` delivers
    assert EdgeConfig.from_context(context.get, environ={}) == config


@pytest.mark.parametrize("ami_id", ["ami-123", "resolve:ssm:/aws/service/x", "AMI-0123456789ABCDEF0"])
def test_ami_id_must_be_an_ami_id(ami_id: str) -> None:
    with pytest.raises(ValueError, match="ami_id"):
        EdgeConfig.from_context(_getter({"ami_id": ami_id}), environ={})
