"""The pipeline's S3 storage: one artifact bucket, one access-log bucket.

Every object the pipeline writes lives under a fixed prefix (:data:`PREFIXES`), so each role gets
access to just the prefixes it uses instead of the whole bucket.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Key prefixes inside the artifact bucket, shared with the Lambda handlers through their
#: environment (``MLOPS_EDGE_ARTIFACT_PREFIX``, ``MLOPS_EDGE_STATE_PREFIX``, see
#: ``pipeline/config/function_env.py``). Artifact keys are immutable: a new version gets a new key.
PREFIXES: dict[str, str] = {
    "datasets": "datasets/",  # training/validation CSVs uploaded by users
    "artifacts": "artifacts/",  # everything the pipeline writes (MLOPS_EDGE_ARTIFACT_PREFIX)
    "training": "artifacts/training/",  # sourcedir.tar.gz and SageMaker job output
    "models": "artifacts/models/",  # ONNX exports, manifests, golden sets, metrics
    "components": "artifacts/components/",  # Greengrass component artifacts devices download
    "state": "state/",  # last-known-good deployment records (MLOPS_EDGE_STATE_PREFIX)
    "monitoring": "state/monitoring/",  # baselines, contexts, device windows, drift reports (issue 16)
}


def access_log_bucket(scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> s3.Bucket:
    """A bucket for S3 server access logs: SSE-S3 (the only encryption log delivery supports),
    TLS-only, private, versioned, logs kept 90 days."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(1))
        ],
        removal_policy=removal_policy,
    )


class ArtifactStore(Construct):
    """The versioned, encrypted, TLS-only artifact bucket and the bucket its access logs go to.

    Attributes:
        bucket: the artifact bucket every stage reads and writes.
        log_bucket: receives the artifact bucket's server access logs (kept 90 days).
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        # Server access logs can only be delivered to SSE-S3 buckets, hence S3-managed keys here;
        # the artifact bucket uses them too so SageMaker, Greengrass devices and Lambda need no
        # KMS grants to read artifacts.
        self.log_bucket = access_log_bucket(self, "AccessLogs", removal_policy=removal_policy)
        self.bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="artifacts/",
            lifecycle_rules=[
                # Artifacts are immutable; old versions only appear on accidental overwrites.
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
            removal_policy=removal_policy,
        )

    def objects(self, prefix: str) -> str:
        """ARN pattern of every object under one of :data:`PREFIXES` (by name), for IAM statements."""
        return self.bucket.arn_for_objects(f"{PREFIXES[prefix]}*")
