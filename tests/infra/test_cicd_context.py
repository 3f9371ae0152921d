"""The CI/CD stack hands its own synth the settings it was deployed with.

A CodeBuild ``cdk synth`` sees ``cdk.json`` and its environment only: without the recorded
settings, the first push would redeploy the pipeline and edge stacks with cdk.json's defaults,
dropping every ``-c`` a person typed (the verifier certificate among them).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from infra.app import REPO_ROOT
from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

pytestmark = pytest.mark.infra

ENVIRON = {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"}
LOOKED_UP = "ami-0fedcba9876543210"
LOOKUP_KEY = (
    "ssm:account=123456789012:parameterName=/aws/service/ami-amazon-linux-latest/"
    "al2023-ami-kernel-6.1-x86_64:region=eu-west-1"
)
#: What a person typed on `cdk deploy` (values differing from cdk.json's).
TYPED = {
    "connection_arn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-2222-3333-4444-555555555555",
    "repository": "my-org/mlops-edge",
    "verifier_certificate_arn": "arn:aws:iot:eu-west-1:123456789012:cert/0123abcd",
    "thing_group_name": "plant-7",
    "log_retention_days": "14",
    "tags": '{"project": "mlops-edge", "owner": "ops team"}',
}


def synth_command(template: dict[str, Any]) -> list[str]:
    """The TestAndSynth project's `cdk synth` command line, split as the shell does."""
    projects = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"
    ]
    specs = [json.loads(p["Source"]["BuildSpec"]) for p in projects]
    (command,) = [c for s in specs for c in s["phases"]["build"]["commands"] if " synth " in c]
    return shlex.split(command)


def passed_context(argv: list[str]) -> dict[str, str]:
    """The ``-c key=value`` pairs, as the CDK CLI hands them to the app."""
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("-c", "--context")]
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[EdgeConfig, dict[str, Any]]:
    """A `cdk deploy` with typed context and credentials: (its settings, the CI/CD template)."""
    from infra.app import build_app

    context = {**load_cdk_json_context(REPO_ROOT / "cdk.json"), **TYPED, LOOKUP_KEY: LOOKED_UP}
    outdir = str(tmp_path_factory.mktemp("cicd-context.out"))
    app, stacks = build_app(context=context, environ=ENVIRON, nag=False, outdir=outdir)
    config = EdgeConfig.from_context(app.node.try_get_context, ENVIRON)
    template = app.synth().get_stack_by_name(stacks["cicd"].stack_name).template
    return config, template


def test_synth_build_carries_every_typed_setting(deployed) -> None:
    _, template = deployed
    passed = passed_context(synth_command(template))
    for key, value in TYPED.items():
        if key == "tags":
            assert json.loads(passed[key]) == json.loads(value)
        else:
            assert passed[key] == value, key
    assert passed["ami_id"] == LOOKED_UP  # the AMI this deploy resolved: no lookup in CodeBuild
    # Only what cdk.json would not give: a cdk.json change pushed through git still takes effect,
    # and account/region come from the build's own credentials.
    assert set(passed) == {*TYPED, "ami_id"}


def test_pipeline_synth_reads_back_the_same_settings(deployed) -> None:
    """cdk.json under the recorded `-c` values, in CodeBuild's account: the same EdgeConfig, so the
    pipeline redeploys what was deployed by hand."""
    import dataclasses

    config, template = deployed
    codebuild_context = {
        **load_cdk_json_context(REPO_ROOT / "cdk.json"),
        **passed_context(synth_command(template)),
    }
    in_codebuild = EdgeConfig.from_context(codebuild_context.get, environ=ENVIRON)
    assert in_codebuild == dataclasses.replace(config, ami_id=LOOKED_UP)


def test_context_arguments_survive_the_shell() -> None:
    from infra.cicd import context_args

    values = {"tags": '{"a": "b c"}', "branch": "feat/it's", "connection_arn": "", "thing_name": "a;b"}
    argv = shlex.split(" ".join(context_args(values)))
    assert passed_context(argv) == values


def test_only_settings_beyond_cdk_json_are_recorded() -> None:
    from infra.cicd import recorded_context

    baseline = EdgeConfig(region="eu-west-1")
    typed = EdgeConfig(account="123456789012", region="us-east-1", thing_group_name="plant-7")
    assert recorded_context(typed, baseline) == {"thing_group_name": "plant-7"}
