"""The policies a decision needs, read through the IAM and S3 APIs and cached until a write.

A role's identity policies are its inline policies (``ListRolePolicies`` + ``GetRolePolicy``)
and its attached managed policies (``ListAttachedRolePolicies`` + the default version of each);
its trust policy is ``GetRole``'s ``AssumeRolePolicyDocument``. A bucket's resource policy is
``GetBucketPolicy``. Everything is read with the local cloud's admin identity, as a provider
calls any other service (``ServerContext.client``), and parsed once.

Caches hold until the dispatcher calls ``invalidate()`` after a write that may change them (IAM,
CloudFormation, a bucket policy): a generation counter makes a read that raced with the write
count as stale, so the next decision reads again. AWS's IAM is eventually consistent too; here
the window is one request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_cloud.iam.policy import Policy, PolicyKind, parse_policy

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RolePolicies:
    """What IAM holds for one role."""

    arn: str
    exists: bool
    policies: tuple[Policy, ...] = ()  # identity policies: inline, then managed
    trust: Policy | None = None
    #: managed policies attached to the role whose document IAM could not give (an AWS managed
    #: policy moto does not load): a refusal may be wrong, so it is not decided
    unresolved: tuple[str, ...] = ()
    #: the documents as read, for the decision log's policy snapshot
    documents: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)


def role_name(role_arn: str) -> str:
    """``arn:aws:iam::123456789012:role/path/Name`` -> ``Name``."""
    return role_arn.split(":", 5)[-1].rsplit("/", 1)[-1]


class PolicyStore:
    """Role and bucket policies, read on first use and cached until ``invalidate()``."""

    def __init__(
        self,
        client: Callable[[str], Any],
        on_role_loaded: Callable[[RolePolicies], None] | None = None,
    ) -> None:
        self._client = client
        self._on_role_loaded = on_role_loaded
        self._lock = threading.Lock()
        self._generation = 0
        self._roles: dict[str, tuple[int, RolePolicies]] = {}
        self._buckets: dict[str, tuple[int, Policy | None]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._roles.clear()
            self._buckets.clear()

    def role(self, role_arn: str) -> RolePolicies:
        with self._lock:
            generation = self._generation
            cached = self._roles.get(role_arn)
        if cached is not None and cached[0] == generation:
            return cached[1]
        loaded = self._load_role(role_arn)
        with self._lock:
            if self._generation == generation:
                self._roles[role_arn] = (generation, loaded)
        if self._on_role_loaded is not None:
            self._on_role_loaded(loaded)
        return loaded

    def bucket_policy(self, bucket: str) -> Policy | None:
        with self._lock:
            generation = self._generation
            cached = self._buckets.get(bucket)
        if cached is not None and cached[0] == generation:
            return cached[1]
        loaded = self._load_bucket_policy(bucket)
        with self._lock:
            if self._generation == generation:
                self._buckets[bucket] = (generation, loaded)
        return loaded

    # -- reading -------------------------------------------------------------------------------
    def _load_role(self, role_arn: str) -> RolePolicies:
        iam = self._client("iam")
        name = role_name(role_arn)
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except iam.exceptions.NoSuchEntityException:
            return RolePolicies(role_arn, exists=False)
        if role["Arn"] != role_arn:
            # a role of that name with another path: not the role the session was made for
            return RolePolicies(role_arn, exists=False)
        documents: list[Mapping[str, Any]] = []
        policies: list[Policy] = []
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy_name in page["PolicyNames"]:
                doc = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
                policies.append(parse_policy(doc, name=policy_name))
                documents.append({"name": policy_name, "kind": "inline", "document": doc})
        unresolved: list[str] = []
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
            for attached in page["AttachedPolicies"]:
                arn = attached["PolicyArn"]
                try:
                    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"][
                        "Document"
                    ]
                except iam.exceptions.NoSuchEntityException:
                    LOG.warning("role %s: managed policy %s has no readable document", role_arn, arn)
                    unresolved.append(arn)
                    continue
                policies.append(parse_policy(doc, name=attached["PolicyName"], arn=arn))
                documents.append(
                    {"name": attached["PolicyName"], "kind": "managed", "arn": arn, "document": doc}
                )
        trust_doc = role.get("AssumeRolePolicyDocument")
        trust = (
            parse_policy(trust_doc, name=f"{name} trust policy", kind=PolicyKind.RESOURCE)
            if trust_doc
            else None
        )
        return RolePolicies(
            role_arn,
            exists=True,
            policies=tuple(policies),
            trust=trust,
            unresolved=tuple(unresolved),
            documents=tuple(documents),
        )

    def _load_bucket_policy(self, bucket: str) -> Policy | None:
        s3 = self._client("s3")
        try:
            text = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        except s3.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchBucketPolicy", "NoSuchBucket"):
                return None
            raise
        return parse_policy(text, name=f"bucket policy of {bucket}", kind=PolicyKind.RESOURCE)
