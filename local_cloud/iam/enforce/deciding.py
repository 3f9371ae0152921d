"""The check itself: a role session's call against its role's policies (and a bucket's policy),
with the provider facts dependent actions need; what cannot be decided as AWS would raises."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from local_cloud.iam.authorize import Verdict, authorize
from local_cloud.iam.dependencies import FACTS
from local_cloud.iam.enforce.calls import ApiCall
from local_cloud.iam.enforce.modes import ModeHolder
from local_cloud.iam.enforce.store import PolicyStore, RolePolicies
from local_cloud.iam.evaluate import ImplicitlyDenied
from local_cloud.iam.exceptions import MissingResourceFact, PolicyError, UnsupportedConditionKey
from local_cloud.iam.operations import iam_action
from local_cloud.iam.policy import Policy
from local_cloud.iam.principals import Caller

#: AWS SDKs reach AWS over HTTPS only; the local endpoint is plain HTTP on loopback.
CONTEXT: Mapping[str, object] = {"aws:SecureTransport": True}

#: Condition keys the evaluator knows (``keys.KNOWN_KEYS``) but this dispatcher never fills: the
#: target resource's tags, the resource a role is passed for. A statement conditioned on one that
#: could apply to the call is not decided (read as "absent", it would flip the statement).
UNFILLED_KEYS = ("aws:resourcetag/", "iam:associatedresourcearn")

#: ``(operation, params) -> facts`` for one service; None when the target does not exist.
FactSource = Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]


class Deciding(ModeHolder):
    """The authorizer's decision: policies, facts, ``authorize``, then what the verdict cannot rest on."""

    account: str
    store: PolicyStore
    facts: dict[str, FactSource]
    _client: Callable[[str], Any]

    def _decide(self, caller: Caller, call: ApiCall) -> Verdict:
        role = self.store.role(caller.role_arn)
        policies: list[Policy] = list(role.policies)
        bucket = call.params.get("Bucket") if call.service == "s3" else None
        if isinstance(bucket, str) and bucket:
            bucket_policy = self.store.bucket_policy(bucket)
            if bucket_policy is not None:
                policies.append(bucket_policy)
        facts, found = self._facts(call)
        verdict = authorize(
            principal=caller,
            service=call.service,
            operation=call.operation,
            params=call.params,
            policies=policies,
            account=caller.account or self.account,
            region=call.region,
            facts=facts,
            context=CONTEXT,
            dependent=found,
        )
        self._check_resolved(role, verdict)
        _check_filled(policies, verdict)
        return verdict

    @staticmethod
    def _check_resolved(role: RolePolicies, verdict: Verdict) -> None:
        denial = verdict.denial
        if denial is not None and role.unresolved and isinstance(denial[1], ImplicitlyDenied):
            raise PolicyError(
                f"{denial[0].action} is not allowed by the policies the local cloud can read, and "
                f"{role.arn} also has managed policies whose documents IAM does not hold here "
                f"({', '.join(role.unresolved)}): cannot tell whether AWS would allow it"
            )

    def _facts(self, call: ApiCall) -> tuple[Mapping[str, Any] | None, bool]:
        """(facts, target found) for the call's dependent actions (``dependencies.FACTS``)."""
        action = iam_action(call.service, call.operation, call.params)
        if action is None or action not in FACTS:
            return None, True
        source = self.facts.get(call.service)
        if source is None:
            raise MissingResourceFact(f"{action}: no provider supplies {', '.join(FACTS[action])}")
        facts = source(call.operation, call.params)
        return (facts, True) if facts is not None else (None, False)

    def _sagemaker_facts(self, operation: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group = params.get("ModelPackageGroupName")
        if operation != "CreateModelPackage" or not group:
            return {}
        sagemaker = self._client("sagemaker")
        count = 0
        for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
            count += len(page.get("ModelPackageSummaryList", []))
        return {"ModelPackageVersion": count + 1}

    def _secretsmanager_facts(self, operation: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        secrets = self._client("secretsmanager")
        try:
            return {"SecretArn": secrets.describe_secret(SecretId=params.get("SecretId"))["ARN"]}
        except secrets.exceptions.ResourceNotFoundException:
            return None


def _check_filled(policies: list[Policy], verdict: Verdict) -> None:
    """``UnsupportedConditionKey`` when a statement whose action covers a checked action has a
    condition on a key the dispatcher does not fill (``UNFILLED_KEYS``)."""
    actions = [check.action for check, _ in verdict.results]
    for policy in policies:
        for st in policy.statements:
            for clause in st.condition.clauses:
                if clause.key.startswith(UNFILLED_KEYS) and any(st.matches_action(a) for a in actions):
                    raise UnsupportedConditionKey(
                        f"policy {policy.name}: condition {clause.text} on {clause.key!r}: the local "
                        "cloud's dispatcher does not fill this key, so it cannot evaluate the "
                        "statement as AWS would"
                    )
