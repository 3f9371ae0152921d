"""Builds the CDK app: three stacks from one :class:`~pipeline.config.deployment.EdgeConfig`.

``app.py`` (what ``cdk synth`` runs) and the infra tests both call :func:`build_app`, so the tests
check exactly what the CLI synthesizes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.cicd import recorded_context
from infra.cicd_stack import CiCdStack
from infra.edge_core_stack import EdgeCoreStack
from infra.nag_suppressions import apply_suppressions
from infra.pipeline_stack import PipelineStack
from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_app(
    *,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    nag: bool = True,
) -> tuple[cdk.App, dict[str, cdk.Stack]]:
    """The app and its stacks (``pipeline``, ``edge``, ``cicd``), not yet synthesized.

    ``context`` defaults to ``cdk.json``'s; values the CDK CLI passes (``-c``) still win, because
    ``App`` reads them from the environment after its constructor defaults.
    """
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = str(REPO_ROOT / "cdk.out")  # the CLI passes CDK_OUTDIR; `python app.py` does not
    merged = load_cdk_json_context(REPO_ROOT / "cdk.json") if context is None else dict(context)
    app = cdk.App(outdir=outdir, context=merged)
    config = EdgeConfig.from_context(app.node.try_get_context, environ)
    env = cdk.Environment(account=config.account or None, region=config.region or None)

    from pipeline.training import source_tarball

    pipeline = PipelineStack(
        app,
        f"{config.stack_prefix}Pipeline",
        config=config,
        source_tarball=source_tarball(),
        env=env,
        description="mlops-edge: artifacts, training, Lambdas, the Step Functions pipeline and its approval trigger",
    )
    edge = EdgeCoreStack(
        app,
        f"{config.stack_prefix}EdgeCore",
        config=config,
        artifact_bucket=pipeline.store.bucket,
        env=env,
        description="mlops-edge: EC2 instance running a Greengrass core of the fleet",
    )
    edge.add_stack_dependency(pipeline, "the core joins the pipeline stack's thing group on first boot")
    # The pipeline's own synth is told what this one has beyond cdk.json: the -c values typed, and
    # the AMI the edge stack looked up, so it deploys the same AMI without a lookup of its own.
    recorded = dataclasses.replace(config, ami_id=edge.core.ami_id or config.ami_id)
    baseline = EdgeConfig.from_context(load_cdk_json_context(REPO_ROOT / "cdk.json").get, {})
    cicd = CiCdStack(
        app,
        f"{config.stack_prefix}CiCd",
        config=config,
        deploy_stacks=[pipeline.stack_name, edge.stack_name],
        synth_context=recorded_context(recorded, baseline),
        env=env,
        description="mlops-edge: CodePipeline (push -> test -> deploy -> run)",
    )
    stacks: dict[str, cdk.Stack] = {"pipeline": pipeline, "edge": edge, "cicd": cicd}
    for key, value in config.tags.items():
        cdk.Tags.of(app).add(key, value)
    if nag:
        cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
        apply_suppressions(stacks)
    return app, stacks
