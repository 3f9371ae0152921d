"""Staged rollout: the canary devices, the stage verdict and row, and which groups a rollback touches.

Stages run one after another (``config.rollout.stages``, normalized by Configure); ``$.rollout``
holds the loop's ``index`` (bounded by ``count``) and one small row per finished stage. Each
device's stage, status and reason go to S3 (``rollout.json``, ``pipeline.execution_detail``),
never into the document.

A share-of-fleet stage picks its devices from the fleet group, devices already in the canary
group first (sticky canaries: the same devices take the risk each time), then by name, and moves
them: into the canary group, out of the fleet group. Greengrass combines the version requirements
of every group a core belongs to, and two groups asking for different versions of one component
fail the deployment (manage-deployments.html, "Component dependency resolution"), so stage
targets are disjoint and the fleet stage deploys to everyone else.

A stage stops the rollout when its failed devices (install, time budget, verification) are more
than ``failure_threshold_percent`` of those it targeted. The share can only grow while the stage
runs, so CheckDeployment stops as soon as it is over; under it, the stage waits for every device
(or the time budget) and EvaluateStage compares the final share.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, transient_errors
from lambdas.core.detail import read_detail, write_detail
from lambdas.core.exceptions import ConfigurationError
from pipeline.config.rollout import stage_of
from pipeline.execution_detail import DEPLOYMENT_STATUS, ROLLOUT, VERIFICATION, detail_uri

#: A device's verification figures kept in ``rollout.json`` (the report's device columns).
VERIFICATION_KEYS = ("passed", "sent", "matched", "failed", "latency_ms", "model_versions", "problems")
#: Row statuses (``$.rollout.stages[*].status``).
SUCCEEDED, FAILED, SKIPPED = "SUCCEEDED", "FAILED", "SKIPPED"


def members(iot: Any, group: str) -> list[str]:
    """Sorted thing names of ``group`` (direct members: the groups are flat)."""
    things: list[str] = []
    with transient_errors(f"ListThingsInThingGroup {group}"):
        for page in iot.get_paginator("list_things_in_thing_group").paginate(thingGroupName=group):
            things.extend(page.get("things", []))
    return sorted(set(things))


def canary_count(canary: Mapping[str, Any], fleet_size: int) -> int:
    """Devices a share-of-fleet stage takes: ``devices`` or ``percent`` of the fleet (rounded up),
    at least one, at most the fleet."""
    if "devices" in canary:
        wanted = int(canary["devices"])
    else:
        wanted = math.ceil(float(canary["percent"]) * fleet_size / 100 - 1e-9)
    return max(1, min(wanted, fleet_size))


def pick_canaries(current: Sequence[str], fleet: Sequence[str], canary: Mapping[str, Any]) -> list[str]:
    """The canary devices: those already canaries first (sticky), then the fleet's by name."""
    pool = sorted(set(current)) + sorted(set(fleet) - set(current))
    return pool[: canary_count(canary, len(pool))] if pool else []


def _require_group(iot: Any, group: str) -> None:
    with transient_errors(f"DescribeThingGroup {group}"):
        try:
            iot.describe_thing_group(thingGroupName=group)
        except ClientError as exc:
            if is_not_found(exc):
                raise ConfigurationError(
                    f"canary thing group {group!r} does not exist: the CDK app creates it "
                    "(docs/deploy-aws.md); or set rollout.canary_thing_group to an existing group"
                ) from exc
            raise


def _move(iot: Any, thing: str, *, into: str, out_of: str) -> None:
    with transient_errors(f"move {thing} to {into}"):
        iot.add_thing_to_thing_group(thingGroupName=into, thingName=thing)
        iot.remove_thing_from_thing_group(thingGroupName=out_of, thingName=thing)


def place_canaries(iot: Any, rollout: Mapping[str, Any], stage: Mapping[str, Any]) -> list[str]:
    """Puts the stage's devices in the canary group and takes them out of the fleet group (and
    gives the fleet back a former canary no longer picked); returns the canaries."""
    canary_group, fleet_group = rollout["canary_thing_group"], rollout["fleet_thing_group"]
    _require_group(iot, canary_group)
    current, fleet = members(iot, canary_group), members(iot, fleet_group)
    chosen = pick_canaries(current, fleet, stage["canary"])
    for thing in chosen:
        if thing not in current or thing in fleet:
            _move(iot, thing, into=canary_group, out_of=fleet_group)
    for thing in set(current) - set(chosen):
        _move(iot, thing, into=fleet_group, out_of=canary_group)
    return chosen


def return_former_canaries(iot: Any, rollout: Mapping[str, Any]) -> list[str]:
    """Before a rollout without a canary stage deploys to the fleet group, puts the devices a
    previous rollout left in the canary group back into the fleet group; returns them.

    Left there, they would miss this version (the fleet group's deployment does not reach them),
    and one that is in both groups fails any deployment that pins another version than the
    canary group's last one (Greengrass combines every group's requirements). A rollout whose
    stages use the canary group (a canary stage, or a stage naming that group) keeps it as it is.
    """
    canary_group, fleet_group = rollout["canary_thing_group"], rollout["fleet_thing_group"]
    if any(s["target"] == "canary" or s["thing_group"] == canary_group for s in rollout["stages"]):
        return []
    try:
        former = members(iot, canary_group)
    except ClientError as exc:
        if is_not_found(exc):  # no canary group (a stack without one): nobody to give back
            return []
        raise
    for thing in former:
        _move(iot, thing, into=fleet_group, out_of=canary_group)
    return former


def _row(
    stage: Mapping[str, Any],
    deployment: Mapping[str, Any],
    counts: Mapping[str, int],
    *,
    verified: int | None,
    failed: int,
    status: str,
) -> dict[str, Any]:
    started = deployment.get("started_at")
    return {
        "name": stage["name"],
        "thing_group": deployment.get("thing_group") or stage["thing_group"],
        "deployment_id": deployment.get("deployment_id"),
        "targeted": int(counts.get("targeted", deployment.get("device_count", 0)) or 0),
        "succeeded": int(counts.get("succeeded", 0)),
        "failed": failed,
        "verified": verified,
        "seconds": round(time.time() - started, 1) if isinstance(started, (int, float)) else None,
        "status": status,
    }


def verdict(targeted: int, failed: int, threshold: float) -> bool:
    """True when the stage may go on: ``failed / targeted * 100`` is not over ``threshold``."""
    return targeted > 0 and failed * 100.0 / targeted <= threshold


def _record_devices(s3: Any, config: Mapping[str, Any], row: Mapping[str, Any], verify: bool) -> str:
    """Adds the stage's devices (status, reason, verified) to ``rollout.json``; returns its URI."""
    status = read_detail(s3, detail_uri(config, DEPLOYMENT_STATUS)) or {}
    checked = read_detail(s3, detail_uri(config, VERIFICATION)) if verify else None
    answers = {d["thing"]: d for d in (checked or {}).get("devices", [])}
    devices = []
    if status.get("deployment_id") == row["deployment_id"]:
        for d in status.get("devices", []):
            entry = {
                "thing": d["thing"],
                "stage": row["name"],
                "status": d["status"],
                "detail": d.get("detail"),
            }
            if d["thing"] in answers:
                answer = answers[d["thing"]]
                entry["verified"] = bool(answer.get("passed"))
                # the next stage rewrites verification.json: keep this device's figures here
                entry["verification"] = {k: answer.get(k) for k in VERIFICATION_KEYS if k in answer}
            devices.append(entry)
    uri = detail_uri(config, ROLLOUT)
    previous = read_detail(s3, uri) or {}
    stages = [s for s in previous.get("stages", []) if s.get("name") != row["name"]]
    stages.append({**row, "devices": devices})
    write_detail(s3, config, ROLLOUT, {"execution": config["execution"], "stages": stages})
    return uri


def evaluate_stage(event: dict[str, Any], *, s3: Any) -> dict[str, Any]:
    """Compares the stage's failed share with its threshold and writes its row.

    Returns the new ``$.rollout``: ``index`` (the next stage's, unchanged when this one stopped
    the rollout), ``count``, ``stages`` (rows), ``passed``, ``more`` (another stage follows),
    ``bake_s`` (the wait before it), ``cause`` (why it stopped, else "") and ``devices_uri``.
    """
    config, loop = event["config"], event.get("rollout") or {}
    index, stage, count = stage_of(config, loop.get("index"))
    deployment = event["deployment"]
    counts = (event.get("deployment_status") or {}).get("counts") or {}
    checked = (event.get("verification") or {}).get("counts") or {} if stage["verify"] else {}
    targeted = int(counts.get("targeted", deployment.get("device_count", 0)) or 0)
    failed = int(counts.get("failed", 0)) + int(checked.get("failed", 0))
    verified = int(checked["verified"]) if "verified" in checked else None
    passed = verdict(targeted, failed, float(stage["failure_threshold_percent"]))
    row = _row(
        stage,
        deployment,
        counts,
        verified=verified,
        failed=failed,
        status=SUCCEEDED if passed else FAILED,
    )
    uri = _record_devices(s3, config, row, bool(stage["verify"]))
    more = passed and index + 1 < count
    cause = ""
    if not passed:
        share = failed * 100.0 / targeted if targeted else 100.0
        cause = (
            f"stage {stage['name']} ({row['thing_group']}): {failed} of {targeted} device(s) failed "
            f"({share:.1f} %), over its failure_threshold_percent {stage['failure_threshold_percent']:g}; "
            f"the rollout stopped before {count - index - 1} later stage(s). Every device: {uri}"
        )
    return {
        "index": index + 1 if passed else index,
        "count": count,
        "stages": [*loop.get("stages", []), row],
        "passed": passed,
        "more": more,
        "bake_s": int(stage["bake_s"]) if more else 0,
        "cause": cause,
        "devices_uri": uri,
    }


def stopped_rows(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    """``$.rollout`` once a stage stopped the rollout: the stopping stage's row (FAILED, from its
    S3 detail when no evaluation wrote it) and a SKIPPED row per later stage.

    A failure after the stage loop (Promote) comes with ``index`` == ``count``: EvaluateStage
    advanced it past the last stage, which passed. Every stage then keeps the row it has; there is
    no stopping stage to add.
    """
    config, loop = event["config"], dict(event.get("rollout") or {})
    stages_cfg = (config.get("rollout") or {}).get("stages") or []
    if not stages_cfg:
        return loop
    if int(loop.get("index") or 0) >= len(stages_cfg):
        rows = list(loop.get("stages", []))
        rows.extend({**_empty_row(s), "status": SKIPPED} for s in stages_cfg[len(rows) :])
        return {"index": len(stages_cfg), "count": len(stages_cfg), "stages": rows}
    index, stage, count = stage_of(config, loop.get("index"))
    rows = list(loop.get("stages", []))
    deployment = event.get("deployment") or {}
    if len(rows) <= index and deployment.get("stage") == index:
        status = read_detail(s3, detail_uri(config, DEPLOYMENT_STATUS)) or {}
        same = status.get("deployment_id") == deployment.get("deployment_id")
        by_status = (status.get("counts") or {}) if same else {}
        counts = {
            "targeted": int(deployment.get("device_count", 0)),
            "succeeded": by_status.get("SUCCEEDED", 0),
        }
        failed = sum(n for s, n in by_status.items() if s in (FAILED, "TIMED_OUT"))
        row = _row(stage, deployment, counts, verified=None, failed=failed, status=FAILED)
        # the rollback matters more than the record of which device was in which stage
        with contextlib.suppress(ClientError):
            _record_devices(s3, config, row, False)
        rows.append(row)
    elif len(rows) <= index:
        rows.append({**_empty_row(stage), "status": FAILED})
    rows.extend({**_empty_row(s), "status": SKIPPED} for s in stages_cfg[len(rows) :])
    return {"index": index, "count": count, "stages": rows}


def _empty_row(stage: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": stage["name"],
        "thing_group": stage["thing_group"],
        "deployment_id": None,
        "targeted": 0,
        "succeeded": 0,
        "failed": 0,
        "verified": None,
        "seconds": None,
        "status": SKIPPED,
    }


def rollback_groups(event: Mapping[str, Any]) -> list[str]:
    """Thing groups that received the new version: every stage with a row that deployed, and the
    stage being deployed when the failure came. Later stages never got it and are left alone."""
    loop = event.get("rollout") or {}
    groups = [r["thing_group"] for r in loop.get("stages", []) if r.get("deployment_id")]
    deployment = event.get("deployment") or {}
    if deployment.get("thing_group"):
        groups.append(deployment["thing_group"])
    return list(dict.fromkeys(groups))
