"""Promote and Rollback: the thing group's last known good set, written and used.

Last known good is an S3 JSON object per thing group (``<state prefix><group>/last-known-good.json``,
plus an immutable copy per deployment under ``history/``): the exact component versions and
configuration a verified deployment used, so a rollback redeploys precisely that.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, put_immutable, transient_errors
from lambdas.core.deployment import components_spec, create_deployment, thing_group
from lambdas.core.exceptions import PromotionFailed, RollbackFailed
from lambdas.core.retraining import switch_rule
from lambdas.core.rollout import rollback_groups, stopped_rows


def lkg_key(config: dict[str, Any], group: str) -> str:
    return f"{config['state_prefix']}{group}/last-known-good.json"


def read_last_known_good(s3: Any, config: dict[str, Any], group: str) -> dict[str, Any] | None:
    with transient_errors("read last known good"):
        try:
            body = s3.get_object(Bucket=config["bucket"], Key=lkg_key(config, group))["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
    return json.loads(body)


def _record(event: dict[str, Any], group: str, deployment_id: str) -> bytes:
    config, registry = event["config"], event["registry"]
    return json.dumps(
        {
            "thing_group": group,
            "deployment_id": deployment_id,
            "execution": config["execution"],
            "components": components_spec(config, event["components"]),
            "model_package_arn": registry["model_package_arn"],
            "model_version": event["components"]["model"]["version"],
            "verification": (event.get("verification") or {}).get("summary"),
            "verification_uri": (event.get("verification") or {}).get("devices_uri"),
        },
        indent=2,
        sort_keys=True,
    ).encode()


def verified_groups(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(thing group, deployment id) of every stage that succeeded, in order; the last deployment's
    group when there are no stage rows (an older state document)."""
    rows = [r for r in (event.get("rollout") or {}).get("stages", []) if r.get("status") == "SUCCEEDED"]
    if rows:
        return [(r["thing_group"], r["deployment_id"]) for r in rows if r.get("deployment_id")]
    deployment = event["deployment"]
    return [(deployment["thing_group"], deployment["deployment_id"])]


def promote(
    event: dict[str, Any], *, s3: Any, sagemaker: Any, events: Any = None, retraining_rule: str = ""
) -> dict[str, Any]:
    """Records the verified versions as last known good of every stage's thing group (so a later
    rollback restores each group), approves the model package, and switches the drift retraining
    rule per ``monitoring.retrain_on_drift``: the model now in service is the one it watches."""
    config, deployment, registry = event["config"], event["deployment"], event["registry"]
    bucket = config["bucket"]
    groups = verified_groups(event)
    try:
        for group, deployment_id in groups:
            body = _record(event, group, deployment_id)
            history = f"{config['state_prefix']}{group}/history/{deployment_id}.json"
            put_immutable(s3, bucket, history, body, content_type="application/json")
            with transient_errors("write last known good"):
                s3.put_object(
                    Bucket=bucket, Key=lkg_key(config, group), Body=body, ContentType="application/json"
                )
    except ClientError as exc:
        raise PromotionFailed(f"cannot record last known good in s3://{bucket}: {exc}") from exc
    status = registry.get("approval_status")
    if status != "Approved":
        names = [group for group, _ in groups]
        _approve(
            sagemaker, registry["model_package_arn"], groups=names, deployment_id=deployment["deployment_id"]
        )
        status = "Approved"
    spec = components_spec(config, event["components"])
    rule = "not configured"
    if events is not None and retraining_rule:
        wanted = bool((config.get("monitoring") or {}).get("retrain_on_drift"))
        try:
            rule = switch_rule(events, retraining_rule, wanted)
        except ClientError as exc:
            raise PromotionFailed(f"cannot switch the retraining rule {retraining_rule}: {exc}") from exc
    return {
        "last_known_good_uri": f"s3://{bucket}/{lkg_key(config, deployment['thing_group'])}",
        "approval_status": status,
        "components": {name: c["componentVersion"] for name, c in spec.items()},
        "retraining_rule": rule,
    }


#: SageMaker's limit on one customer metadata value (CustomerMetadataMap in the API reference).
METADATA_VALUE_CHARS = 256


def metadata_list(names: list[str]) -> str:
    """``names`` as one customer metadata value: space-separated, because a value may hold letters,
    digits, spaces and ``_.:/=+-@`` only (a comma is refused), cut to the last whole name that fits
    in 256 characters with ``+N`` for the rest."""
    value = " ".join(names)
    kept = list(names)
    while len(value) > METADATA_VALUE_CHARS and len(kept) > 1:
        kept.pop()
        value = f"{' '.join(kept)} +{len(names) - len(kept)}"
    return value[:METADATA_VALUE_CHARS]


def _approve(sagemaker: Any, arn: str, *, groups: list[str], deployment_id: str) -> None:
    """Approves the package and notes where it was verified (every stage's thing group).

    The existing customer metadata is sent back with the update: harmless where UpdateModelPackage
    merges it (AWS, the local cloud), and it keeps the map where an implementation replaces it with
    what the request carries (moto alone).
    """
    where = ", ".join(groups)
    with transient_errors("UpdateModelPackage"):
        try:
            package = sagemaker.describe_model_package(ModelPackageName=arn)
            metadata = {
                **(package.get("CustomerMetadataProperties") or {}),
                "verified_thing_group": metadata_list(groups),
                "verified_deployment": deployment_id,
            }
            sagemaker.update_model_package(
                ModelPackageArn=arn,
                ModelApprovalStatus="Approved",
                ApprovalDescription=f"verified on every device of thing group {where} (deployment {deployment_id})",
                CustomerMetadataProperties=metadata,
            )
        except ClientError as exc:
            raise PromotionFailed(f"cannot approve {arn}: {exc}") from exc


def original_failure(error: dict[str, Any] | None) -> tuple[str, str]:
    """(error name, readable cause) from a Catch result; Lambda causes are JSON with errorMessage."""
    error = error or {}
    name = str(error.get("Error") or "PipelineFailed")
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            cause = str(parsed["errorMessage"])
    except (TypeError, ValueError):
        pass
    return name, str(cause) or "no cause reported"


def _restore(
    s3: Any, greengrass: Any, iot: Any, config: dict[str, Any], group: str
) -> tuple[str, dict[str, str], str]:
    """Redeploys ``group``'s last known good (a canary group without one gets the fleet group's:
    its devices came from the fleet); returns (deployment id, versions, what was done)."""
    lkg = read_last_known_good(s3, config, group)
    rollout = config.get("rollout") or {}
    if lkg is None and group == rollout.get("canary_thing_group"):
        lkg = read_last_known_good(s3, config, config["deployment"]["thing_group"])
    spec = lkg["components"] if lkg else {}
    arn, _ = thing_group(iot, group)
    rollback_id = create_deployment(
        greengrass,
        target_arn=arn,
        name=f"{config['components']['prefix']}-rollback-{config['execution']}",
        spec=spec,
        deployment=config["deployment"],
        token_seed=f"rollback|{config['execution']}|{group}",
    )
    versions = {n: c["componentVersion"] for n, c in spec.items()}
    if lkg:
        restored = ", ".join(f"{n} {v}" for n, v in sorted(versions.items()))
        action = f"redeployed last known good ({restored}) from {lkg.get('execution')}"
    else:
        action = "no last known good: removed this pipeline's components from the group"
    return rollback_id, versions, f"{action}, deployment {rollback_id} to {group}"


def rollback(event: dict[str, Any], *, s3: Any, greengrass: Any, iot: Any) -> dict[str, Any]:
    """Redeploys the last known good set (or removes ours) to every thing group that received the
    new version, and only to those; returns the failure for the Fail state and the final
    ``rollout`` rows (the stopping stage FAILED, later ones SKIPPED)."""
    config = event["config"]
    name, cause = original_failure(event.get("error"))
    rows = stopped_rows(event, s3)  # before redeploying: it reads the failed stage's detail
    if not event.get("deployment"):
        return {
            "error": name,
            "cause": f"{cause} (nothing was deployed, so nothing was rolled back)",
            "action": "none",
            "deployment_id": None,
            "components": {},
            "rollout": rows,
        }
    done: list[str] = []
    rollback_id, versions = None, {}
    for group in rollback_groups(event):
        try:
            rollback_id, versions, what = _restore(s3, greengrass, iot, config, group)
        except Exception as exc:
            raise RollbackFailed(
                f"could not redeploy thing group {group}: {exc}; original failure: {cause}"
                + (f" (already rolled back: {'; '.join(done)})" if done else "")
            ) from exc
        done.append(what)
    skipped = [r["name"] for r in rows.get("stages", []) if r.get("status") == "SKIPPED"]
    untouched = f" Stage(s) {', '.join(skipped)} never received the new version." if skipped else ""
    return {
        "error": name,
        "cause": f"{cause} | Rollback: {'; '.join(done)}.{untouched}",
        "action": "redeployed" if versions else "removed",
        "deployment_id": rollback_id,
        "components": versions,
        "rollout": rows,
    }
