"""Deploy / CheckDeployment: a Greengrass deployment to the thing group, judged per device.

Success is each device's own result for *this* deployment id (ListEffectiveDeployments), never the
job-level status: a device that failed or rolled back fails the step, with its reason.

Per-device records go to S3 (``pipeline.execution_detail``), never into the state document:
Deploy writes the devices it targeted, each CheckDeployment the latest status of every device, and
both return counts, the detail's URI and at most ``MAX_NAMED`` devices by name. A check asks
Greengrass only about devices not yet finished (earlier checks' successes are read back from S3),
several at a time. Unfinished devices are also named by their presence (``lambdas.core.presence``:
offline since a disconnect, never connected); when all of them have been offline past the grace
period they count as failed at once instead of at the time budget.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, transient_errors
from lambdas.core.detail import clip, counted, named, read_detail, write_detail
from lambdas.core.exceptions import ConfigurationError, DeploymentFailed, DeploymentTimedOut, NoDevices
from lambdas.core.presence import NEVER_CONNECTED as NO_PRESENCE
from lambdas.core.presence import name_offline
from lambdas.core.rollout import place_canaries, return_former_canaries, verdict
from pipeline.config.polling import poll_section
from pipeline.config.rollout import iot_job_from_deployment, stage_of
from pipeline.execution_detail import DEPLOYMENT_STATUS, DEPLOYMENT_TARGETS, MAX_NAMED, detail_uri

SUCCEEDED = {"SUCCEEDED", "COMPLETED"}
FAILED = {"FAILED", "TIMED_OUT", "CANCELED", "REJECTED"}
#: Devices asked about at once. Each is a ListEffectiveDeployments call; the clients' standard
#: retry mode absorbs throttling, so this bounds the rate rather than guarding it.
STATUS_WORKERS = 8
#: Why a device has no result, in the words the summaries and the report use.
NEVER_CONNECTED = "never connected: not registered as a Greengrass core device"
NOT_RECEIVED = "deployment not received yet"


def components_spec(config: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The ``components`` argument of CreateDeployment: exact versions, inference config merged."""
    spec: dict[str, Any] = {
        components["model"]["name"]: {"componentVersion": components["model"]["version"]},
        components["inference"]["name"]: {"componentVersion": components["inference"]["version"]},
    }
    merge = config["components"].get("inference_configuration") or {}
    # issue 16: the devices' monitoring window from the input's monitoring.window_s (0 = off); an
    # explicit inference_configuration.MonitoringWindowSeconds is the more specific and wins.
    window_s = (config.get("monitoring") or {}).get("window_s")
    if window_s is not None:
        merge = {"MonitoringWindowSeconds": window_s, **merge}
    if merge:
        spec[components["inference"]["name"]]["configurationUpdate"] = {
            "merge": json.dumps(merge, sort_keys=True)
        }
    return spec


def thing_group(iot: Any, name: str) -> tuple[str, list[str]]:
    """(ARN, member thing names) of the target group; a missing or empty group is an error."""
    with transient_errors(f"DescribeThingGroup {name}"):
        try:
            arn = iot.describe_thing_group(thingGroupName=name)["thingGroupArn"]
        except ClientError as exc:
            if is_not_found(exc):
                raise ConfigurationError(
                    f"thing group {name!r} does not exist: create it or fix deployment.thing_group"
                ) from exc
            raise
    things: list[str] = []
    with transient_errors(f"ListThingsInThingGroup {name}"):
        for page in iot.get_paginator("list_things_in_thing_group").paginate(
            thingGroupName=name, recursive=True
        ):
            things.extend(page.get("things", []))
    return arn, sorted(set(things))


def create_deployment(
    greengrass: Any,
    *,
    target_arn: str,
    name: str,
    spec: dict[str, Any],
    deployment: dict[str, Any],
    token_seed: str,
    iot_job: dict[str, Any] | None = None,
) -> str:
    """CreateDeployment with ROLLBACK on failure and the IoT job rollout/abort/timeout settings:
    ``iot_job`` (a rollout stage's), else those of ``deployment.*``."""
    request = {
        "targetArn": target_arn,
        "deploymentName": name[:256],
        "components": spec,
        "deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {
                "timeoutInSeconds": int(deployment.get("component_update_timeout_s", 60)),
                "action": "NOTIFY_COMPONENTS",
            },
            "configurationValidationPolicy": {"timeoutInSeconds": 30},
        },
        "iotJobConfiguration": iot_job or iot_job_from_deployment(deployment),
        # Same execution + same versions -> same token: a retried Deploy does not deploy twice.
        "clientToken": hashlib.sha256(
            f"{token_seed}|{json.dumps(spec, sort_keys=True)}".encode()
        ).hexdigest()[:64],
    }
    with transient_errors("CreateDeployment"):
        try:
            return greengrass.create_deployment(**request)["deploymentId"]
        except ClientError as exc:
            raise DeploymentFailed(f"CreateDeployment to {target_arn} refused: {exc}") from exc


def deploy(event: dict[str, Any], *, greengrass: Any, iot: Any, s3: Any) -> dict[str, Any]:
    """Deploys the current rollout stage (``$.rollout.index``) to its thing group; a share-of-fleet
    stage first moves its devices into the canary group. The targeted devices go to S3, their
    number to the document."""
    config, components = event["config"], event["components"]
    index, stage, count = stage_of(config, (event.get("rollout") or {}).get("index"))
    if stage["target"] == "canary":
        place_canaries(iot, config["rollout"], stage)
    elif stage["target"] == "fleet":
        return_former_canaries(iot, config["rollout"])
    group = stage["thing_group"]
    arn, devices = thing_group(iot, group)
    if not devices:
        raise NoDevices(f"thing group {group!r} has no devices: provision a Greengrass core into it first")
    spec = components_spec(config, components)
    started_at = time.time()
    # One stage keeps the names of before; several get one deployment (and token) each.
    suffix = f"-{stage['name']}" if count > 1 else ""
    deployment_id = create_deployment(
        greengrass,
        target_arn=arn,
        name=f"{config['components']['prefix']}-{config['execution']}{suffix}",
        spec=spec,
        deployment=config["deployment"],
        token_seed=config["execution"] + (f"|{stage['name']}" if count > 1 else ""),
        iot_job=stage["iot_job"],
    )
    versions = {name: c["componentVersion"] for name, c in spec.items()}
    uri = write_detail(
        s3,
        config,
        DEPLOYMENT_TARGETS,
        {
            "deployment_id": deployment_id,
            "thing_group": group,
            "stage": stage["name"],
            "components": versions,
            "devices": devices,
            # the time budget (poll.deployment.timeout_s) counts from here; CheckDeployment reads it
            "started_at": started_at,
        },
    )
    return {
        "deployment_id": deployment_id,
        "thing_group": group,
        "target_arn": arn,
        "device_count": len(devices),
        "devices_uri": uri,
        "components": versions,
        "stage": index,
        "started_at": started_at,
        # the stage's own choice: VerifyStage? reads it (ASL cannot index stages by $.rollout.index)
        "verify": bool(stage["verify"]),
    }


def _reason(effective: dict[str, Any]) -> str:
    details = effective.get("statusDetails") or {}
    parts = [effective.get("reason") or ""]
    if details.get("errorTypes"):
        parts.append("types " + ",".join(details["errorTypes"]))
    if details.get("errorStack"):
        parts.append("stack " + ",".join(details["errorStack"]))
    if not any(parts) and effective.get("coreDeviceExecutionStatus") == "TIMED_OUT":
        return "no result within the IoT job's in-progress timeout (device offline?)"
    return "; ".join(p for p in parts if p) or "no reason reported"


def device_status(greengrass: Any, thing: str, deployment_id: str) -> dict[str, Any]:
    """``{"thing", "status", "detail"}`` of one device for one deployment, and ``last_contact``
    (epoch seconds) when the device ever reported a deployment status: the latest
    ``modifiedTimestamp`` of its effective deployments, i.e. when it last told the cloud anything."""
    found = None
    contact: float | None = None
    with transient_errors(f"ListEffectiveDeployments {thing}"):
        try:
            pages = greengrass.get_paginator("list_effective_deployments").paginate(coreDeviceThingName=thing)
            for page in pages:
                for effective in page.get("effectiveDeployments", []):
                    if effective.get("deploymentId") == deployment_id:
                        found = effective
                    modified = _epoch(effective.get("modifiedTimestamp"))
                    if modified is not None and (contact is None or modified > contact):
                        contact = modified
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            return {"thing": thing, "status": "PENDING", "detail": NEVER_CONNECTED}
    result = _device_result(thing, found)
    if contact is not None:
        result["last_contact"] = contact
    return result


def _epoch(value: Any) -> float | None:
    """A timestamp as boto3 parses it (datetime) or as JSON carries it (number), in epoch seconds."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _device_result(thing: str, found: dict[str, Any] | None) -> dict[str, Any]:
    if found is None:
        return {"thing": thing, "status": "PENDING", "detail": NOT_RECEIVED}
    status = found.get("coreDeviceExecutionStatus", "QUEUED")
    detailed = (found.get("statusDetails") or {}).get("detailedDeploymentStatus", "")
    if status in FAILED or detailed.startswith("FAILED") or detailed == "REJECTED":
        suffix = f" ({detailed})" if detailed else ""
        return {"thing": thing, "status": "FAILED", "detail": f"{status}{suffix}: {_reason(found)}"}
    if status in SUCCEEDED:
        return {"thing": thing, "status": "SUCCEEDED", "detail": detailed or status}
    return {"thing": thing, "status": "IN_PROGRESS", "detail": status}


def device_statuses(
    greengrass: Any, things: Sequence[str], deployment_id: str, *, workers: int = STATUS_WORKERS
) -> dict[str, dict[str, Any]]:
    """:func:`device_status` of each thing, ``workers`` at a time (boto3 clients are thread-safe)."""
    if workers <= 1 or len(things) <= 1:
        return {thing: device_status(greengrass, thing, deployment_id) for thing in things}
    with ThreadPoolExecutor(max_workers=min(workers, len(things))) as pool:
        found = pool.map(lambda thing: device_status(greengrass, thing, deployment_id), things)
        return dict(zip(things, found, strict=True))


def _finished_before(s3: Any, uri: str, deployment_id: str) -> dict[str, dict[str, str]]:
    """Devices an earlier check of this deployment saw succeed: that result is final."""
    previous = read_detail(s3, uri) or {}
    if previous.get("deployment_id") != deployment_id:
        return {}
    return {d["thing"]: d for d in previous.get("devices", []) if d.get("status") == "SUCCEEDED"}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _stalled_detail(device: Mapping[str, Any], now: float) -> str:
    """``<detail>; last contact <when> (<n> s ago): …`` of a device the time budget ran out on."""
    contact = device.get("last_contact")
    if isinstance(contact, (int, float)):
        when = f"last contact {_iso(contact)} ({now - contact:.0f} s ago): offline or stalled?"
    elif device.get("detail") in (NEVER_CONNECTED, NO_PRESENCE):
        when = "never contacted the cloud"
    else:
        when = "no deployment status ever reported: offline since it registered?"
    return f"{device.get('detail') or device['status']}; {when}"


def _started_at(s3: Any, config: Mapping[str, Any], deployment_id: str) -> float | None:
    """When Deploy created this deployment (its targets detail), else None (older executions)."""
    targets = read_detail(s3, detail_uri(config, DEPLOYMENT_TARGETS)) or {}
    started = targets.get("started_at")
    if targets.get("deployment_id") != deployment_id or not isinstance(started, (int, float)):
        return None
    return float(started)


def _device_line(device: Mapping[str, str]) -> str:
    """``thing: reason`` for a message; a failed device's detail already starts with its status."""
    status, detail = device["status"], device["detail"]
    if device["status"] == "FAILED" or not detail or detail == status:
        return f"{device['thing']}: {detail or status}"
    return f"{device['thing']}: {status} ({detail})"


def _timed_out(
    s3: Any, config: Mapping[str, Any], deployment_id: str, unfinished: list[dict[str, Any]]
) -> float | None:
    """Now, if the time budget (``poll.deployment.timeout_s``, counted from CreateDeployment as
    Deploy's targets detail records it) has run out with devices unfinished; else None."""
    budget = (config.get("poll") or {}).get("deployment", {}).get("timeout_s")
    started = _started_at(s3, config, deployment_id) if unfinished and budget else None
    now = time.time()
    return now if started is not None and now - started >= budget else None


def check_deployment(event: dict[str, Any], *, greengrass: Any, iot: Any, s3: Any) -> dict[str, Any]:
    """Every device's result, written to S3; raises once the stage's failed share is over its
    ``failure_threshold_percent`` (0: the first failed device), naming the failed devices. Devices
    offline past the grace period count as failed once no other device is unfinished.

    Returns ``status`` (SUCCEEDED once every device finished and the failed share is within the
    threshold; the time budget ends the wait, unfinished devices then count as TIMED_OUT), ``counts``,
    a ``summary`` that names up to ``MAX_NAMED`` unfinished devices with their reason (the
    DeploymentTimedOut cause quotes it), those devices as ``unfinished``, and ``devices_uri``.
    """
    config, deployment = event["config"], event["deployment"]
    deployment_id = deployment["deployment_id"]
    _, stage, _ = stage_of(config, deployment.get("stage"))
    threshold = float(stage["failure_threshold_percent"])
    _, things = thing_group(iot, deployment["thing_group"])
    if not things:
        raise NoDevices(f"thing group {deployment['thing_group']!r} has no devices any more")
    uri = detail_uri(config, DEPLOYMENT_STATUS)
    finished = _finished_before(s3, uri, deployment_id)
    fresh = device_statuses(greengrass, [t for t in things if t not in finished], deployment_id)
    devices = [finished.get(thing) or fresh[thing] for thing in things]
    waiting = [d for d in devices if d["status"] not in ("SUCCEEDED", "FAILED")]
    offline = name_offline(s3, config, waiting, never_registered=NEVER_CONNECTED, now=time.time())
    if offline and len(offline) == len(waiting):  # nothing left worth waiting for: docs/contracts.md
        for d in offline:
            d["status"] = "FAILED"
    by_status: dict[str, int] = {}
    for d in devices:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    failed = [d for d in devices if d["status"] == "FAILED"]
    unfinished = [d for d in devices if d["status"] not in ("SUCCEEDED", "FAILED")]
    summary = counted(by_status, len(devices))
    if unfinished:
        summary += "; waiting for " + named([_device_line(d) for d in unfinished], uri=uri)
    over = not verdict(len(devices), len(failed), threshold)
    now = None if over else _timed_out(s3, config, deployment_id, unfinished)
    if now is not None:
        for d in unfinished:
            d["detail"] = _stalled_detail(d, now)
            d["status"] = "TIMED_OUT"
    lost = (
        not over and now is not None and not verdict(len(devices), len(failed) + len(unfinished), threshold)
    )
    done = not over and (not unfinished or now is not None)
    status = "FAILED" if over else "TIMED_OUT" if lost else "SUCCEEDED" if done else "IN_PROGRESS"
    write_detail(
        s3,
        config,
        DEPLOYMENT_STATUS,
        {
            "deployment_id": deployment_id,
            "thing_group": deployment["thing_group"],
            "status": status,
            "summary": summary,
            "counts": by_status,
            "devices": devices,
        },
    )
    if lost:
        started = _started_at(s3, config, deployment_id) or now
        raise DeploymentTimedOut(
            f"deployment {deployment_id} not finished on {len(unfinished)} of {len(devices)} device(s) "
            f"within poll.deployment.timeout_s {config['poll']['deployment']['timeout_s']} s "
            f"({now - started:.0f} s since CreateDeployment): "
            f"{named([_device_line(d) for d in unfinished], uri=uri)}. "
            "A device that stopped reporting is offline or its core is stuck: check its Greengrass log."
        )
    if over:
        raise DeploymentFailed(
            f"deployment {deployment_id} failed on {len(failed)} of {len(devices)} device(s): "
            f"{named([_device_line(d) for d in failed], uri=uri)}. Check the Greengrass logs on the "
            "device (greengrass.log and the component logs)."
        )
    return {**_check_result(status, summary, devices, uri), **poll_section(event, "deployment")}


def _check_result(status: str, summary: str, devices: list[dict[str, Any]], uri: str) -> dict[str, Any]:
    """The document's share of a check: counts, at most ``MAX_NAMED`` unfinished devices, the URI."""
    count = {s: sum(1 for d in devices if d["status"] == s) for s in ("SUCCEEDED", "IN_PROGRESS", "PENDING")}
    failed = sum(1 for d in devices if d["status"] in ("FAILED", "TIMED_OUT"))
    unfinished = [d for d in devices if d["status"] not in ("SUCCEEDED", "FAILED")]
    return {
        "status": status,
        "summary": summary,
        "counts": {
            "targeted": len(devices),
            "succeeded": count["SUCCEEDED"],
            "failed": failed,
            "in_progress": count["IN_PROGRESS"],
            "pending": count["PENDING"],
        },
        "unfinished": [
            {"thing": d["thing"], "status": d["status"], "detail": clip(d["detail"])}
            for d in unfinished[:MAX_NAMED]
        ],
        "devices_uri": uri,
    }
