"""What a SageMaker training job and the model registry need: role, image, source, package group.

The training image URI comes from the SageMaker Python SDK at synth time
(``sagemaker.core.image_uris.retrieve("xgboost", region, version="1.7-1")``, offline; the
``sagemaker-core`` package of the ``cdk`` extra), never from a copied table. A stack with a region
gets that region's URI as a literal; an environment-agnostic stack gets a ``CfnMapping`` of every
region the SDK knows, resolved by ``Fn::FindInMap`` on ``AWS::Region`` at deploy time.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from aws_cdk import Aws, CfnMapping, Stack, Stage, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.permissions import log_group_writer
from infra.storage import PREFIXES, ArtifactStore

XGBOOST_FRAMEWORK = "xgboost"
XGBOOST_FRAMEWORK_VERSION = "1.7-1"


@cache
def xgboost_image_uris() -> dict[str, str]:
    """Region -> ``sagemaker-xgboost:1.7-1`` training image URI, for every region the SDK knows.

    The regions are the SDK's own (the registries of the framework version in its image config,
    ISO partitions included); each URI is what ``image_uris.retrieve`` answers for that region.
    Importing the SDK takes a few seconds, so this runs once per process and only at synth.
    """
    from sagemaker.core import image_uris

    versions = image_uris.config_for_framework(XGBOOST_FRAMEWORK)["training"]["versions"]
    regions = sorted(versions[XGBOOST_FRAMEWORK_VERSION]["registries"])
    return {region: xgboost_image_uri(region) for region in regions}


def xgboost_image_uri(region: str) -> str:
    """The region's training image URI from the SDK; ``ValueError`` for a region it does not know."""
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            XGBOOST_FRAMEWORK, region, version=XGBOOST_FRAMEWORK_VERSION, image_scope="training"
        )
    )


def image_registry_account(uri: str) -> str:
    """The ECR registry account of an image URI (``<account>.dkr.ecr.<region>.<suffix>/...``)."""
    return uri.split(".", 1)[0]


def image_repository(uri: str) -> str:
    """The repository of an image URI, without registry or tag (``sagemaker-xgboost``)."""
    return uri.split("/", 1)[1].rsplit(":", 1)[0]


class TrainingResources(Construct):
    """SageMaker execution role, training image URI, training source asset and model package group.

    Attributes:
        role: the execution role SageMaker training jobs run as (passed by the state machine).
        image_uri: the region's ``sagemaker-xgboost:1.7-1`` image: a literal when the stack has a
            region, else ``Fn::FindInMap`` on the SDK's region map.
        source: the ``sourcedir.tar.gz`` asset (``source.s3_object_url`` is the ``s3://`` URI).
        model_package_group: the registry group models are registered in.
        model_package_group_name / model_package_group_arn: its name and ARN.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        store: ArtifactStore,
        model_package_group_name: str,
        source_tarball: bytes,
    ) -> None:
        super().__init__(scope, construct_id)
        self.image_uri, image_account, image_repository_name = self._image()
        self.source = s3_assets.Asset(self, "SourceDir", path=str(_write_source(self, source_tarball)))
        self.model_package_group_name = model_package_group_name
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=model_package_group_name,
            model_package_group_description="XGBoost models exported to ONNX for Greengrass edge devices",
        )
        self.model_package_group_arn = Stack.of(self).format_arn(
            service="sagemaker",
            resource="model-package-group",
            resource_name=model_package_group_name.lower(),
        )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="SageMaker training jobs of the mlops-edge pipeline",
        )
        self._grant_data(store)
        self._grant_image_pull(image_account, image_repository_name)
        self._grant_monitoring()

    def _image(self) -> tuple[str, str, str]:
        """The training image URI, its registry account and repository, from the SageMaker Python SDK.

        With a region, that region's URI (a region the SDK does not know fails the synth). Without
        one, a mapping of every region the SDK knows, looked up with ``Fn::FindInMap`` on deploy.
        """
        region = Stack.of(self).region
        if not Token.is_unresolved(region):
            try:
                uri = xgboost_image_uri(region)
            except ValueError as exc:
                raise ValueError(
                    f"the SageMaker Python SDK has no XGBoost {XGBOOST_FRAMEWORK_VERSION} image in {region}: {exc}"
                ) from exc
            return uri, image_registry_account(uri), image_repository(uri)
        uris = xgboost_image_uris()
        (repository,) = {image_repository(uri) for uri in uris.values()}  # one name in every region
        images = CfnMapping(
            self,
            "XgboostImage",
            mapping={
                region: {"uri": uri, "account": image_registry_account(uri)} for region, uri in uris.items()
            },
        )
        return images.find_in_map(Aws.REGION, "uri"), images.find_in_map(Aws.REGION, "account"), repository

    def _grant_data(self, store: ArtifactStore) -> None:
        """Read the datasets, write the job output, read the one source asset; nothing else."""
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[store.objects("datasets")])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject"], resources=[store.objects("training")]
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[store.bucket.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{PREFIXES['datasets']}*", f"{PREFIXES['training']}*"]}
                },
            )
        )
        # Exactly the one asset object (its key is its content hash), not the whole assets bucket.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{Aws.PARTITION}:s3:::{self.source.s3_bucket_name}/{self.source.s3_object_key}"
                ],
            )
        )

    def _grant_image_pull(self, image_account: str, repository: str) -> None:
        """Pull the framework image from SageMaker's registry account for this region."""
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[
                    Stack.of(self).format_arn(
                        service="ecr",
                        account=image_account,
                        resource="repository",
                        resource_name=repository,
                    )
                ],
            )
        )

    def _grant_monitoring(self) -> None:
        """Training logs and metrics, under SageMaker's own log group and metric namespace only."""
        self.role.add_to_policy(log_group_writer(Stack.of(self), "/aws/sagemaker/TrainingJobs:*"))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            )
        )


def _write_source(scope: Construct, data: bytes) -> Path:
    """Write the training tarball into the cloud assembly directory so it can become an asset.

    The file name carries the content hash: identical source gives the identical asset, and a
    stale file from an earlier synth can never be picked up by mistake.
    """
    stage = Stage.of(scope)
    outdir = Path(stage.outdir if stage is not None else "cdk.out")
    target = outdir / "training-source" / f"sourcedir-{hashlib.sha256(data).hexdigest()[:16]}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target
