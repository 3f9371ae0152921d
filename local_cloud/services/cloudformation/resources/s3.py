"""AWS::S3::Bucket and AWS::S3::BucketPolicy through the S3 API, every configuration the template
sets: versioning, encryption, lifecycle, public access block, ownership, server access logging, tags.

Server access logging: S3 (moto, like AWS's documented rule) wants the target bucket's policy to
let ``logging.s3.amazonaws.com`` write first, but CDK's template creates that policy *after* the
source bucket (the policy names the source bucket's ARN). CloudFormation deploys it anyway, so a
logging configuration the target does not accept yet is kept pending and applied as soon as a
BucketPolicy of this stack is put on the target bucket.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore.exceptions import ClientError
from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    client,
    tag_list,
)

#: target bucket -> {source bucket: BucketLoggingStatus} waiting for the target's policy
_PENDING_LOGGING: dict[str, dict[str, dict[str, Any]]] = {}
_PENDING_LOCK = threading.Lock()


def _lifecycle_rule(rule: dict[str, Any], index: int) -> dict[str, Any]:
    """One ``LifecycleConfiguration.Rules`` entry of the template as PutBucketLifecycleConfiguration's."""
    out: dict[str, Any] = {"ID": rule.get("Id") or f"rule-{index}", "Status": rule["Status"]}
    tags = [{"Key": t["Key"], "Value": t["Value"]} for t in rule.get("TagFilters") or []]
    prefix = rule.get("Prefix")
    if tags or "ObjectSizeGreaterThan" in rule or "ObjectSizeLessThan" in rule:
        conditions: dict[str, Any] = {"Prefix": prefix or ""}
        if tags:
            conditions["Tags"] = tags
        for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
            if key in rule:
                conditions[key] = int(rule[key])
        out["Filter"] = {"And": conditions}
    else:
        out["Filter"] = {"Prefix": prefix or ""}
    expiration = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        out["Expiration"] = expiration
    noncurrent = dict(rule.get("NoncurrentVersionExpiration") or {})
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent["NoncurrentDays"] = rule["NoncurrentVersionExpirationInDays"]
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {k: int(v) for k, v in noncurrent.items()}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    transitions = [
        {
            **({"Days": int(t["TransitionInDays"])} if "TransitionInDays" in t else {}),
            **({"Date": t["TransitionDate"]} if "TransitionDate" in t else {}),
            "StorageClass": t["StorageClass"],
        }
        for t in rule.get("Transitions") or []
    ]
    if transitions:
        out["Transitions"] = transitions
    noncurrent_transitions = [
        {"NoncurrentDays": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
        for t in rule.get("NoncurrentVersionTransitions") or []
    ]
    if noncurrent_transitions:
        out["NoncurrentVersionTransitions"] = noncurrent_transitions
    return out


def _encryption(config: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in config.get("ServerSideEncryptionConfiguration") or []:
        out: dict[str, Any] = {}
        if "ServerSideEncryptionByDefault" in rule:
            out["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
        if "BucketKeyEnabled" in rule:
            out["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
        rules.append(out)
    return {"Rules": rules}


def _logging_status(props: dict[str, Any]) -> dict[str, Any]:
    config = props.get("LoggingConfiguration")
    if not config or "DestinationBucketName" not in config:
        return {}
    enabled = {
        "TargetBucket": config["DestinationBucketName"],
        "TargetPrefix": config.get("LogFilePrefix", ""),
    }
    return {"LoggingEnabled": enabled}


def _put_logging(bucket: str, status: dict[str, Any]) -> None:
    """Apply server access logging now, or keep it pending until the target's policy allows it."""
    s3 = client("s3")
    target = (status.get("LoggingEnabled") or {}).get("TargetBucket")
    with _PENDING_LOCK:
        for sources in _PENDING_LOGGING.values():
            sources.pop(bucket, None)
    try:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=status)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "InvalidTargetBucketForLogging" or "permission" not in str(exc):
            raise
        with _PENDING_LOCK:
            _PENDING_LOGGING.setdefault(target, {})[bucket] = status


def apply_pending_logging(target: str) -> None:
    """The target bucket's policy changed: apply the logging configurations that waited for it."""
    with _PENDING_LOCK:
        waiting = dict(_PENDING_LOGGING.get(target, {}))
    for source, status in waiting.items():
        _put_logging(source, status)


class Bucket(Handler, CloudFormationModel):
    TYPE = "AWS::S3::Bucket"
    NAME = "BucketName"
    NAME_LIMIT = 63
    NAME_LOWER = True
    ATTRIBUTES = ("Arn", "DomainName", "RegionalDomainName", "DualStackDomainName", "WebsiteURL")
    PROPERTIES = frozenset(
        {
            "BucketName",
            "VersioningConfiguration",
            "BucketEncryption",
            "LifecycleConfiguration",
            "PublicAccessBlockConfiguration",
            "OwnershipControls",
            "LoggingConfiguration",
            "Tags",
        }
    )

    @classmethod
    def _configure(cls, name: str, props: dict[str, Any], old: dict[str, Any]) -> None:
        s3 = client("s3")

        def changed(key: str) -> bool:
            return props.get(key) != old.get(key)

        if changed("VersioningConfiguration"):
            status = (props.get("VersioningConfiguration") or {}).get("Status", "Suspended")
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        if changed("BucketEncryption"):
            if props.get("BucketEncryption"):
                s3.put_bucket_encryption(
                    Bucket=name, ServerSideEncryptionConfiguration=_encryption(props["BucketEncryption"])
                )
            else:
                s3.delete_bucket_encryption(Bucket=name)
        if changed("LifecycleConfiguration"):
            rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
            if rules:
                s3.put_bucket_lifecycle_configuration(
                    Bucket=name,
                    LifecycleConfiguration={"Rules": [_lifecycle_rule(r, i) for i, r in enumerate(rules, 1)]},
                )
            else:
                s3.delete_bucket_lifecycle(Bucket=name)
        if changed("PublicAccessBlockConfiguration"):
            if props.get("PublicAccessBlockConfiguration"):
                block = {k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()}
                s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
            else:
                s3.delete_public_access_block(Bucket=name)
        if changed("OwnershipControls"):
            if props.get("OwnershipControls"):
                s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
            else:
                s3.delete_bucket_ownership_controls(Bucket=name)
        if changed("LoggingConfiguration"):
            _put_logging(name, _logging_status(props))
        if changed("Tags"):
            if props.get("Tags"):
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(props)})
            else:
                s3.delete_bucket_tagging(Bucket=name)

    @classmethod
    def _attributes(cls, request: ResourceRequest, name: str) -> dict[str, str]:
        region = request.region
        return {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
        }

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        s3 = client("s3")
        location = {} if request.region == "us-east-1" else {"LocationConstraint": request.region}
        kwargs: dict[str, Any] = {"CreateBucketConfiguration": location} if location else {}
        if (request.properties.get("OwnershipControls") or {}).get("Rules"):
            kwargs["ObjectOwnership"] = request.properties["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
        try:
            s3.head_bucket(Bucket=request.name)
        except ClientError:
            pass
        else:  # us-east-1's CreateBucket answers 200 for a bucket you own; CloudFormation does not
            raise ValueError(f"{request.name} already exists")
        s3.create_bucket(Bucket=request.name, **kwargs)
        cls._configure(request.name, request.properties, {})
        return Deployed(request.name, cls._attributes(request, request.name))

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        cls._configure(previous.physical_id, request.properties, previous.properties)
        return Deployed(previous.physical_id, previous.attributes)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("s3").delete_bucket(Bucket=previous.physical_id)


class BucketPolicy(Handler, CloudFormationModel):
    TYPE = "AWS::S3::BucketPolicy"
    REPLACE_ON = ("Bucket",)
    PROPERTIES = frozenset({"Bucket", "PolicyDocument"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        bucket = str(request.properties["Bucket"])
        document = request.properties["PolicyDocument"]
        client("s3").put_bucket_policy(
            Bucket=bucket, Policy=document if isinstance(document, str) else json.dumps(document)
        )
        apply_pending_logging(bucket)
        return Deployed(bucket)

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        return cls.create(request)

    @classmethod
    def remove(cls, previous: Any) -> None:
        client("s3").delete_bucket_policy(Bucket=previous.physical_id)
