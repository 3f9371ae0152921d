"""One synthesis of the whole CDK app per test session, shared by every infra test.

Synthesizing costs seconds (jsii round trips, asset staging), so the app is built once, with
cdk-nag's AwsSolutions checks applied, into a temporary cloud assembly; tests read its templates
and annotations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.statemachine.node import use_bundled_node

use_bundled_node()  # before the first `import aws_cdk` of the session, where this runs first

#: Context for the test synthesis: cdk.json's defaults plus a connection ARN, so the CodeStar
#: source is the one a real deployment has.
TEST_CONTEXT_OVERRIDES = {
    "connection_arn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/11111111-2222-3333-4444-555555555555",
    "repository": "example-org/mlops-edge",
}


#: The environment the CDK CLI gives the app when no credentials are configured.
CLI_ENVIRON = {"CDK_DEFAULT_REGION": "eu-west-1"}


@dataclass
class Synth:
    """What the session synthesis produced."""

    outdir: Path
    stacks: dict[str, Any]  # key (pipeline|edge|cicd) -> cdk Stack
    templates: dict[str, dict[str, Any]]  # key -> CloudFormation template (parsed JSON)
    template_paths: dict[str, Path]
    #: (stack name, level: info|warning|error, construct path, message) of every annotation
    messages: list[tuple[str, str, str, str]] = field(default_factory=list)

    def resources(self, key: str, type_: str) -> dict[str, dict[str, Any]]:
        """Resources of one type in one stack, by logical id."""
        return {k: r for k, r in self.templates[key]["Resources"].items() if r["Type"] == type_}


_LEVELS = {"aws:cdk:info": "info", "aws:cdk:warning": "warning", "aws:cdk:error": "error"}


def _annotations(outdir: Path, artifact_id: str, stack_name: str) -> list[tuple[str, str, str, str]]:
    """The stack's annotations as the cloud assembly records them (``manifest.json`` or the
    artifact's ``*.metadata.json``). Read from disk, not through jsii's ``artifact.messages``:
    jsii 1.142 cannot always deserialize their ``MetadataEntry`` (``Unknown interface``), which
    made every infra test error on a fresh clone."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    artifact = manifest["artifacts"][artifact_id]
    metadata = dict(artifact.get("metadata") or {})
    extra = (artifact.get("properties") or {}).get("additionalMetadataFile") or artifact.get(
        "additionalMetadataFile"
    )
    if not extra and (outdir / f"{artifact_id}.metadata.json").exists():
        extra = f"{artifact_id}.metadata.json"
    if extra:
        metadata.update(json.loads((outdir / extra).read_text()))
    return [
        (stack_name, _LEVELS[entry["type"]], path, str(entry.get("data")))
        for path, entries in metadata.items()
        for entry in entries
        if entry.get("type") in _LEVELS
    ]


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from infra.app import REPO_ROOT, build_app
    from pipeline.config.deployment import load_cdk_json_context

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {**load_cdk_json_context(REPO_ROOT / "cdk.json"), **TEST_CONTEXT_OVERRIDES}
    # As `cdk synth` runs it without credentials: the CLI sets CDK_DEFAULT_REGION, no account.
    app, stacks = build_app(outdir=str(outdir), context=context, environ=CLI_ENVIRON)
    assembly = app.synth()
    templates: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    messages: list[tuple[str, str, str, str]] = []
    by_name = {stack.stack_name: key for key, stack in stacks.items()}
    for artifact in assembly.stacks:
        key = by_name[artifact.stack_name]
        paths[key] = Path(artifact.template_full_path)
        templates[key] = json.loads(paths[key].read_text())
        messages += _annotations(outdir, artifact.id, artifact.stack_name)
    return Synth(outdir=outdir, stacks=stacks, templates=templates, template_paths=paths, messages=messages)
