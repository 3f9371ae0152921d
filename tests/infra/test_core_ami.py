"""The EC2 core's AMI is fixed in the template, never resolved again at each deploy.

``MachineImage.latest_amazon_linux2023()`` renders an SSM-typed template parameter that
CloudFormation resolves on every deploy: each new Amazon Linux AMI then changes ``ImageId`` and
replaces the instance, which re-provisions the Greengrass core. The stack takes ``ami_id`` as is,
or looks the latest AMI up once at synth (kept in ``cdk.context.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.app import REPO_ROOT
from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

pytestmark = pytest.mark.infra

PINNED = "ami-0123456789abcdef0"
LOOKED_UP = "ami-0fedcba9876543210"
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
#: The context key the CDK CLI stores the lookup under in cdk.context.json.
LOOKUP_KEY = f"ssm:account=123456789012:parameterName={AL2023_PARAMETER}:region=eu-west-1"


def _edge(
    config: EdgeConfig, *, bound: bool, context: dict[str, Any] | None = None
) -> tuple[dict, dict, Any]:
    """(template, manifest, stack) of the edge stack alone."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from infra.edge_core_stack import EdgeCoreStack

    env = cdk.Environment(account="123456789012", region="eu-west-1") if bound else None
    app = cdk.App(context={**load_cdk_json_context(REPO_ROOT / "cdk.json"), **(context or {})})
    holder = cdk.Stack(app, "Holder", env=env)
    stack = EdgeCoreStack(app, "Edge", config=config, artifact_bucket=s3.Bucket(holder, "Bucket"), env=env)
    assembly = app.synth()
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    return assembly.get_stack_by_name("Edge").template, manifest, stack


def _image_id(template: dict) -> Any:
    (instance,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Instance"]
    return instance["Properties"]["ImageId"]


def _assert_fixed_at_synth(template: dict, ami: str) -> None:
    assert _image_id(template) == ami
    text = json.dumps(template)
    assert "{{resolve:ssm" not in text
    ssm_parameters = [
        p for p in template.get("Parameters", {}).values() if "AWS::EC2::Image::Id" in p["Type"]
    ]
    assert not ssm_parameters, ssm_parameters


@pytest.mark.parametrize("bound", [False, True], ids=["env-agnostic", "account-bound"])
def test_pinned_ami_is_written_into_the_template(bound: bool) -> None:
    template, manifest, stack = _edge(EdgeConfig(ami_id=PINNED), bound=bound)
    _assert_fixed_at_synth(template, PINNED)
    assert not manifest.get("missing")
    assert stack.core.ami_id == PINNED


def test_latest_ami_is_looked_up_once_at_synth_and_then_kept() -> None:
    """Account-bound (every `cdk deploy`): the CLI resolves the AL2023 parameter before synth and
    stores it; synths that find it in context render that AMI id and nothing to resolve later."""
    _, manifest, _ = _edge(EdgeConfig(), bound=True)
    assert [m["key"] for m in manifest["missing"]] == [LOOKUP_KEY]
    template, manifest, stack = _edge(EdgeConfig(), bound=True, context={LOOKUP_KEY: LOOKED_UP})
    _assert_fixed_at_synth(template, LOOKED_UP)
    assert not manifest.get("missing")
    assert stack.core.ami_id == LOOKED_UP


def test_environment_agnostic_synth_says_its_ami_is_not_pinned(synth) -> None:
    """Without an account nothing can be looked up: the session synth (as `cdk synth` without
    credentials) falls back to the deploy-time SSM parameter, and says so."""
    warnings = [m for m in synth.messages if m[1] == "warning" and "mlops-edge:ami-unpinned" in m[3]]
    assert warnings, [m for m in synth.messages if m[1] == "warning"]
    assert "Ref" in _image_id(synth.templates["edge"])
