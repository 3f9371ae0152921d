"""What a SageMaker training job and the model registry need: role, image, source, package group.

The training image URI comes from a static per-region map (the SageMaker Python SDK's own table
for the XGBoost 1.7-1 framework container), rendered as a ``CfnMapping``: the SDK is about 1 GB
and is kept out of the synth path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import Aws, CfnMapping, Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.permissions import log_group_writer
from infra.storage import PREFIXES, ArtifactStore

XGBOOST_FRAMEWORK_VERSION = "1.7-1"
XGBOOST_REPOSITORY = "sagemaker-xgboost"

#: ECR registry account of ``sagemaker-xgboost:1.7-1`` per region, as in the SageMaker Python SDK's
#: ``image_uri_config/xgboost.json`` (``sagemaker.image_uris.retrieve("xgboost", region, "1.7-1")``).
#: Isolated (ISO) regions are left out: their ECR domain is not ``Aws.URL_SUFFIX``.
XGBOOST_IMAGE_ACCOUNTS: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


def xgboost_image_uri(account: str, region: str, url_suffix: str = "amazonaws.com") -> str:
    """The training image URI for concrete values (what the mapping resolves to on deploy)."""
    return f"{account}.dkr.ecr.{region}.{url_suffix}/{XGBOOST_REPOSITORY}:{XGBOOST_FRAMEWORK_VERSION}"


class TrainingResources(Construct):
    """SageMaker execution role, training image URI, training source asset and model package group.

    Attributes:
        role: the execution role SageMaker training jobs run as (passed by the state machine).
        image_uri: the region's ``sagemaker-xgboost:1.7-1`` image (a token resolved by CloudFormation).
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
        image_account = self._image_account()
        self.image_uri = (
            f"{image_account}.dkr.ecr.{Aws.REGION}.{Aws.URL_SUFFIX}/"
            f"{XGBOOST_REPOSITORY}:{XGBOOST_FRAMEWORK_VERSION}"
        )
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
        self._grant_image_pull(image_account)
        self._grant_monitoring()

    def _image_account(self) -> str:
        """The region's SageMaker XGBoost registry account (``Fn::FindInMap`` on the region)."""
        accounts = CfnMapping(
            self,
            "XgboostImageAccounts",
            mapping={region: {"account": account} for region, account in XGBOOST_IMAGE_ACCOUNTS.items()},
        )
        return accounts.find_in_map(Aws.REGION, "account")

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

    def _grant_image_pull(self, image_account: str) -> None:
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
                        resource_name=XGBOOST_REPOSITORY,
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
