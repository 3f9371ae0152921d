"""The training image URI comes from the SageMaker Python SDK at synth time, for every region it knows.

A stack with a region gets that region's URI as a literal; an environment-agnostic stack gets a
mapping of every region the SDK knows and ``Fn::FindInMap`` on ``AWS::Region``. Each case builds a
small stack holding only the training resources; one synthesis serves every case.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.statemachine.node import use_bundled_node

use_bundled_node()  # before the first `import aws_cdk`

pytestmark = pytest.mark.infra

#: What ``sagemaker.image_uris.retrieve("xgboost", region, "1.7-1")`` answers, as AWS documents it
#: (the "Docker Registry Paths and Example Code" pages); held here only to check the SDK is asked.
KNOWN = {
    "eu-west-1": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
    "ap-southeast-2": "783357654285.dkr.ecr.ap-southeast-2.amazonaws.com/sagemaker-xgboost:1.7-1",
    "cn-north-1": "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.7-1",
}


REGIONS = ("ap-southeast-2", "cn-north-1")


def _stack(app: Any, name: str, region: str | None) -> None:
    import aws_cdk as cdk
    from aws_cdk import RemovalPolicy

    from infra.storage import ArtifactStore
    from infra.training import TrainingResources

    stack = cdk.Stack(app, name, env=cdk.Environment(region=region) if region else None)
    store = ArtifactStore(stack, "Store", removal_policy=RemovalPolicy.DESTROY)
    training = TrainingResources(
        stack, "Training", store=store, model_package_group_name="g", source_tarball=b"source"
    )
    cdk.CfnOutput(stack, "Image", value=training.image_uri)


def _app(outdir: Any) -> Any:
    import aws_cdk as cdk

    from infra.app import REPO_ROOT
    from pipeline.config.deployment import load_cdk_json_context

    return cdk.App(outdir=str(outdir), context=load_cdk_json_context(REPO_ROOT / "cdk.json"))


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, dict[str, Any]]:
    """One synthesis: a stack per region of :data:`REGIONS` and one with no region."""
    app = _app(tmp_path_factory.mktemp("cdk.out"))
    names = {None: "Agnostic", **{region: region.replace("-", "") for region in REGIONS}}
    for region, name in names.items():
        _stack(app, name, region)
    assembly = app.synth()
    return {region: assembly.get_stack_by_name(name).template for region, name in names.items()}


def _ecr_resources(template: dict[str, Any]) -> list[Any]:
    statements = [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    return [s["Resource"] for s in statements if "ecr:BatchGetImage" in json.dumps(s["Action"])]


@pytest.mark.parametrize("region", REGIONS)
def test_a_region_gets_the_sdks_uri_as_a_literal(templates, region) -> None:  # type: ignore[no-untyped-def]
    from sagemaker.core import image_uris

    template = templates[region]
    uri = template["Outputs"]["Image"]["Value"]
    assert uri == image_uris.retrieve("xgboost", region, version="1.7-1") == KNOWN[region]
    assert "Mappings" not in template
    account = uri.split(".")[0]
    assert account in json.dumps(_ecr_resources(template))
    assert ":repository/sagemaker-xgboost" in json.dumps(_ecr_resources(template))


def test_an_agnostic_stack_maps_every_region_the_sdk_knows(templates) -> None:  # type: ignore[no-untyped-def]
    from sagemaker.core import image_uris

    template = templates[None]
    (name, mapping), *_ = template["Mappings"].items()
    assert len(template["Mappings"]) == 1
    assert template["Outputs"]["Image"]["Value"] == {"Fn::FindInMap": [name, {"Ref": "AWS::Region"}, "uri"]}
    sdk_regions = image_uris.config_for_framework("xgboost")["training"]["versions"]["1.7-1"]["registries"]
    assert sorted(mapping) == sorted(sdk_regions)
    assert len(mapping) > 30  # every commercial, China, GovCloud and ISO region
    for region, uri in KNOWN.items():
        assert mapping[region] == {"uri": uri, "account": uri.split(".")[0]}
    # ISO partitions have their own ECR domains: the SDK's URI, not a URL_SUFFIX guess.
    assert mapping["us-iso-east-1"]["uri"].endswith(".c2s.ic.gov/sagemaker-xgboost:1.7-1")
    assert "Fn::FindInMap" in json.dumps(_ecr_resources(template))


def test_a_region_the_sdk_does_not_know_fails_the_synth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match=r"no XGBoost 1\.7-1 image in xx-moon-1"):
        _stack(_app(tmp_path), "Moon", "xx-moon-1")
