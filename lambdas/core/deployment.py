"""Deploy / CheckDeployment: a Greengrass deployment to the thing group, judged per device.

Success is each device's own result for *this* deployment id (ListEffectiveDeployments), never the
job-level status: a device that failed or rolled back fails the step, with its reason.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, transient_errors
from lambdas.core.exceptions import ConfigurationError, DeploymentFailed, NoDevices

SUCCEEDED = {"SUCCEEDED", "COMPLETED"}
FAILED = {"FAILED", "TIMED_OUT", "CANCELED", "REJECTED"}


def components_spec(config: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """The ``components`` argument of CreateDeployment: exact versions, inference config merged."""
    spec: dict[str, Any] = {
        components["model"]["name"]: {"componentVersion": components["model"]["version"]},
        components["inference"]["name"]: {"componentVersion": components["inference"]["version"]},
    }
    merge = config["components"].get("inference_configuration") or {}
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
) -> str:
    """CreateDeployment with ROLLBACK on failure and the IoT job rollout/abort/timeout settings."""
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
        "iotJobConfiguration": {
            "jobExecutionsRolloutConfig": {
                "maximumPerMinute": int(deployment.get("maximum_per_minute", 100))
            },
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": float(deployment.get("abort_threshold_percent", 10)),
                        "minNumberOfExecutedThings": int(deployment.get("abort_min_devices", 1)),
                    }
                ]
            },
            "timeoutConfig": {
                "inProgressTimeoutInMinutes": int(deployment.get("in_progress_timeout_minutes", 30))
            },
        },
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


def deploy(event: dict[str, Any], *, greengrass: Any, iot: Any) -> dict[str, Any]:
    config, components = event["config"], event["components"]
    group = config["deployment"]["thing_group"]
    arn, devices = thing_group(iot, group)
    if not devices:
        raise NoDevices(f"thing group {group!r} has no devices: provision a Greengrass core into it first")
    spec = components_spec(config, components)
    deployment_id = create_deployment(
        greengrass,
        target_arn=arn,
        name=f"{config['components']['prefix']}-{config['execution']}",
        spec=spec,
        deployment=config["deployment"],
        token_seed=config["execution"],
    )
    return {
        "deployment_id": deployment_id,
        "thing_group": group,
        "target_arn": arn,
        "devices": devices,
        "components": {name: c["componentVersion"] for name, c in spec.items()},
    }


def _reason(effective: dict[str, Any]) -> str:
    details = effective.get("statusDetails") or {}
    parts = [effective.get("reason") or ""]
    if details.get("errorTypes"):
        parts.append("types " + ",".join(details["errorTypes"]))
    if details.get("errorStack"):
        parts.append("stack " + ",".join(details["errorStack"]))
    return "; ".join(p for p in parts if p) or "no reason reported"


def device_status(greengrass: Any, thing: str, deployment_id: str) -> dict[str, str]:
    """``{"thing", "status", "detail"}`` of one device for one deployment."""
    found = None
    with transient_errors(f"ListEffectiveDeployments {thing}"):
        try:
            pages = greengrass.get_paginator("list_effective_deployments").paginate(coreDeviceThingName=thing)
            for page in pages:
                for effective in page.get("effectiveDeployments", []):
                    if effective.get("deploymentId") == deployment_id:
                        found = effective
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            return {"thing": thing, "status": "PENDING", "detail": "not known as a core device yet"}
    if found is None:
        return {"thing": thing, "status": "PENDING", "detail": "deployment not received yet"}
    status = found.get("coreDeviceExecutionStatus", "QUEUED")
    detailed = (found.get("statusDetails") or {}).get("detailedDeploymentStatus", "")
    if status in FAILED or detailed.startswith("FAILED") or detailed == "REJECTED":
        suffix = f" ({detailed})" if detailed else ""
        return {"thing": thing, "status": "FAILED", "detail": f"{status}{suffix}: {_reason(found)}"}
    if status in SUCCEEDED:
        return {"thing": thing, "status": "SUCCEEDED", "detail": detailed or status}
    return {"thing": thing, "status": "IN_PROGRESS", "detail": status}


def check_deployment(event: dict[str, Any], *, greengrass: Any, iot: Any) -> dict[str, Any]:
    """Every device's result; raises :class:`DeploymentFailed` listing each failed device's reason."""
    deployment = event["deployment"]
    _, things = thing_group(iot, deployment["thing_group"])
    if not things:
        raise NoDevices(f"thing group {deployment['thing_group']!r} has no devices any more")
    devices = [device_status(greengrass, thing, deployment["deployment_id"]) for thing in things]
    counts: dict[str, int] = {}
    for d in devices:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    summary = (
        ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items())) + f" of {len(devices)}"
    )
    failed = [d for d in devices if d["status"] == "FAILED"]
    if failed:
        reasons = "; ".join(f"{d['thing']}: {d['detail']}" for d in failed)
        raise DeploymentFailed(
            f"deployment {deployment['deployment_id']} failed on {len(failed)} of {len(devices)} device(s): "
            f"{reasons}. Check the Greengrass logs on the device (greengrass.log and the component logs)."
        )
    status = "SUCCEEDED" if all(d["status"] == "SUCCEEDED" for d in devices) else "IN_PROGRESS"
    return {"status": status, "devices": devices, "summary": summary}
