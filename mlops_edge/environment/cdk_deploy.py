"""Deploy one stack of a cloud assembly to the local cloud as ``cdk deploy --method=direct`` does.

1. **Bootstrap** (what ``cdk bootstrap`` leaves that a deploy uses, minimal): the assets bucket
   ``cdk-<qualifier>-assets-<account>-<region>``, the container assets repository and the SSM
   parameter ``/cdk-bootstrap/<qualifier>/version`` (the highest version the assembly requires).
2. **Publish** the stack's assets as cdk-assets does, from its ``*.assets.json``: a file as it is,
   a directory zipped, each to its bucket and key, skipped when already there. A container image
   cannot be built here: an image manifest stands in for it under the asset's tag (its config
   digest is the hash of the build context), so a function whose image was never published fails
   as on AWS, and the local Lambda runtime runs the image's CMD handler.
3. **CreateStack / UpdateStack** with the template's URL in the assets bucket and the capabilities
   ``cdk deploy`` passes, then wait for the stack; a failed stack raises with the failed resources'
   events, as ``cdk deploy`` prints them. A stack left in ``ROLLBACK_COMPLETE`` by a failed first
   deploy is deleted first, as ``cdk deploy`` does.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_edge.environment.assembly import Assembly, StackArtifact
from pipeline.archive import deterministic_zip

QUALIFIER = "hnb659fds"  # the default synthesizer's qualifier
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_IN_PROGRESS = "_IN_PROGRESS"


class DeployFailed(RuntimeError):
    """The stack did not deploy; the message lists the failed resources and why."""


@dataclass(frozen=True)
class Target:
    """Where the local cloud deploys: its account and region (a template's pseudo parameters)."""

    account: str
    region: str
    partition: str = "aws"

    def resolve(self, text: str) -> str:
        """An asset manifest's ``${AWS::AccountId}``-style placeholders, filled in."""
        return (
            text.replace("${AWS::AccountId}", self.account)
            .replace("${AWS::Region}", self.region)
            .replace("${AWS::Partition}", self.partition)
        )

    @property
    def assets_bucket(self) -> str:
        return f"cdk-{QUALIFIER}-assets-{self.account}-{self.region}"

    @property
    def container_repository(self) -> str:
        return f"cdk-{QUALIFIER}-container-assets-{self.account}-{self.region}"

    @property
    def version_parameter(self) -> str:
        return f"/cdk-bootstrap/{QUALIFIER}/version"


@dataclass
class Deployed:
    stack_name: str
    stack_id: str
    status: str
    outputs: dict[str, str]
    #: logical id -> (resource type, physical id)
    resources: dict[str, tuple[str, str]]
    changed: bool
    published: list[str] = field(default_factory=list)

    def physical_ids(self, resource_type: str) -> list[str]:
        return [physical for kind, physical in self.resources.values() if kind == resource_type]

    @classmethod
    def read(
        cls, cfn: Any, described: dict[str, Any], *, changed: bool, published: list[str] | None = None
    ) -> Deployed:
        """The stack as DescribeStacks gave it, with its resources (every ListStackResources page)."""
        name = described["StackName"]
        resources = {
            r["LogicalResourceId"]: (r["ResourceType"], r["PhysicalResourceId"])
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name)
            for r in page["StackResourceSummaries"]
        }
        return cls(
            stack_name=name,
            stack_id=described["StackId"],
            status=described["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []},
            resources=resources,
            changed=changed,
            published=published or [],
        )


def _ignore(codes: set[str], call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in codes:
            return None
        raise


# -- bootstrap ---------------------------------------------------------------------------------------
def bootstrap(client: Callable[[str], Any], target: Target, version: int) -> None:
    """The bootstrap resources a deploy uses (idempotent, like ``cdk bootstrap``)."""
    s3, ecr, ssm = client("s3"), client("ecr"), client("ssm")
    try:
        s3.head_bucket(Bucket=target.assets_bucket)
    except ClientError:
        s3.create_bucket(Bucket=target.assets_bucket)
        s3.put_bucket_versioning(Bucket=target.assets_bucket, VersioningConfiguration={"Status": "Enabled"})
    _ignore(
        {"RepositoryAlreadyExistsException"},
        lambda: ecr.create_repository(repositoryName=target.container_repository),
    )
    try:
        current = int(ssm.get_parameter(Name=target.version_parameter)["Parameter"]["Value"])
    except ClientError:
        current = 0
    if current < version:
        ssm.put_parameter(Name=target.version_parameter, Value=str(version), Type="String", Overwrite=True)


def required_bootstrap_version(assembly: Assembly, stack: StackArtifact) -> int:
    versions = [int(stack.properties.get("requiresBootstrapStackVersion") or 0)]
    for dep in stack.dependencies:
        properties = assembly.artifacts.get(dep, {}).get("properties") or {}
        versions.append(int(properties.get("requiresBootstrapStackVersion") or 0))
    return max(versions)


# -- assets ----------------------------------------------------------------------------------------
def _files(directory: Path) -> list[tuple[str, bytes]]:
    return [
        (str(path.relative_to(directory)), path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]


def _exists(call: Callable[[], Any]) -> Any:
    """The call's answer, or None when what it asks for is not there."""
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {
            "404",
            "NoSuchKey",
            "NotFound",
            "ImageNotFoundException",
        }:
            return None
        raise


def _asset_body(path: Path, packaging: str) -> bytes:
    return deterministic_zip(_files(path)) if packaging == "zip" or path.is_dir() else path.read_bytes()


def publish_assets(
    client: Callable[[str], Any], assembly_dir: Path, manifests: Iterable[Path], target: Target
) -> list[str]:
    """Publish every asset of the manifests that is not there yet; returns what was published.

    cdk-assets skips an object that exists under the asset's key (the key is the content hash).
    Here the object is also compared with the file (its MD5 ETag), so an assembly edited after
    synth (``--cdk-out`` with a hand-changed template) is deployed as it is, not as it was.
    """
    s3, ecr = client("s3"), client("ecr")
    published: list[str] = []
    for manifest_path in manifests:
        manifest = json.loads(manifest_path.read_text())
        for asset_hash, asset in (manifest.get("files") or {}).items():
            source = asset["source"]
            if "executable" in source or "path" not in source:
                raise DeployFailed(
                    f"asset {asset_hash}: only file and directory assets can be published here"
                )
            body = _asset_body(assembly_dir / source["path"], source.get("packaging", "file"))
            etag = f'"{hashlib.md5(body).hexdigest()}"'  # S3's ETag of a single-part upload
            for destination in asset["destinations"].values():
                bucket, key = (
                    target.resolve(destination["bucketName"]),
                    target.resolve(destination["objectKey"]),
                )
                head = _exists(lambda: s3.head_object(Bucket=bucket, Key=key))  # noqa: B023
                if head is not None and head.get("ETag") == etag:
                    continue
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                published.append(f"s3://{bucket}/{key}")
        for asset_hash, asset in (manifest.get("dockerImages") or {}).items():
            source = asset["source"]
            context = assembly_dir / source["directory"] if "directory" in source else None
            for destination in asset["destinations"].values():
                repository = target.resolve(destination["repositoryName"])
                tag = target.resolve(destination["imageTag"])
                image = {"imageTag": tag}
                if _exists(lambda: ecr.describe_images(repositoryName=repository, imageIds=[image])):  # noqa: B023
                    continue
                ecr.put_image(
                    repositoryName=repository,
                    imageTag=tag,
                    imageManifest=json.dumps(_stand_in_manifest(context, asset_hash)),
                    imageManifestMediaType="application/vnd.docker.distribution.manifest.v2+json",
                )
                published.append(f"{target.account}.dkr.ecr.{target.region}.amazonaws.com/{repository}:{tag}")
    return published


def _stand_in_manifest(context: Path | None, asset_hash: str) -> dict[str, Any]:
    """An image manifest for an image the local cloud does not build: its config digest is the
    hash of the build context, so a changed context is a different image."""
    digest = hashlib.sha256(asset_hash.encode())
    if context is not None and context.is_dir():
        for name, data in _files(context):
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 0,
            "digest": f"sha256:{digest.hexdigest()}",
        },
        "layers": [],
    }


# -- the stack ---------------------------------------------------------------------------------------
def _template_url(stack: StackArtifact, target: Target) -> str | None:
    url = stack.properties.get("stackTemplateAssetObjectUrl")
    if not url:
        return None
    bucket, _, key = target.resolve(str(url)).removeprefix("s3://").partition("/")
    return f"https://s3.{target.region}.amazonaws.com/{bucket}/{key}"


def _describe(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(cfn.describe_stacks(StackName=name)["Stacks"][0])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _wait(cfn: Any, name: str, timeout_s: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stack = _describe(cfn, name)
        if stack is None:
            raise DeployFailed(f"stack {name} disappeared while deploying")
        if _IN_PROGRESS not in stack["StackStatus"] or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def _failures(cfn: Any, name: str) -> list[str]:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return [
        f"{e['LogicalResourceId']} ({e['ResourceType']}) {e['ResourceStatus']}: {e.get('ResourceStatusReason', '')}"
        for e in reversed(events)
        if e["ResourceStatus"].endswith("FAILED")
    ]


def deploy_stack(
    client: Callable[[str], Any],
    assembly: Assembly,
    stack: StackArtifact,
    target: Target,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> Deployed:
    """Bootstrap, publish the stack's assets, create or update it, wait; raises DeployFailed."""
    environment = stack.environment.removeprefix("aws://")
    account, _, region = environment.partition("/")
    if account not in ("unknown-account", target.account) or region not in ("unknown-region", target.region):
        raise DeployFailed(
            f"{stack.stack_name} was synthesized for aws://{environment}; the local cloud is "
            f"account {target.account}, region {target.region} (synthesize without an account and region)"
        )
    bootstrap(client, target, required_bootstrap_version(assembly, stack))
    published = publish_assets(client, assembly.directory, assembly.asset_manifests(stack), target)
    if published:
        log(f"published {len(published)} asset(s): {', '.join(published)}")
    cfn = client("cloudformation")
    name = stack.stack_name
    url = _template_url(stack, target)
    template = {"TemplateURL": url} if url else {"TemplateBody": stack.template_path.read_text()}
    tags = [{"Key": k, "Value": str(v)} for k, v in (stack.properties.get("tags") or {}).items()]
    existing = _describe(cfn, name)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        log(f"stack {name} failed its first creation: deleting it before creating it again")
        cfn.delete_stack(StackName=name)
        existing = None
    changed = True
    if existing is None:
        cfn.create_stack(StackName=name, Capabilities=CAPABILITIES, Tags=tags, **template)
    else:
        try:
            cfn.update_stack(StackName=name, Capabilities=CAPABILITIES, Tags=tags, **template)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise DeployFailed(f"{name}: {exc}") from exc
            changed = False
    final = _wait(cfn, name)
    if final["StackStatus"] not in _TERMINAL_OK:
        failures = "\n  ".join(_failures(cfn, name)) or final.get("StackStatusReason", "")
        raise DeployFailed(f"stack {name} ended {final['StackStatus']}:\n  {failures}")
    return Deployed.read(cfn, final, changed=changed, published=published)
