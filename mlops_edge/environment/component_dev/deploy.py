"""`component deploy`: one published component to one thing, the rest of what it runs kept.

A deployment to a thing ARN replaces that thing's own (``thing/<name>``) set of root components, so
the spec names the new component *and* every component the device has installed (at its installed
version) that no thing-group deployment already gives it: the model keeps running beside a new
inference build. The deployment policy, job rollout and abort settings are the pipeline's
(``lambdas.core.deployment.create_deployment``: ROLLBACK on failure), and the device's result is
judged as the pipeline judges it (``device_status``, the device's own effective deployment).

One limit is Greengrass's, not ours: a core merges the root components of every deployment that
targets it (its thing and each of its thing groups) and fails a deployment whose pinned versions
disagree ("conflicts in component version requirements"). So a component that a thing group's
deployment pins cannot take another version through a thing deployment; :func:`plan` says so
before anything is deployed, naming the group and its deployment.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.deployment import create_deployment, device_status
from lambdas.core.exceptions import PipelineError
from mlops_edge.environment.component_dev.build import ComponentDevError

#: Never named in a thing deployment: the nucleus comes with the device, not from this loop.
NOT_KEPT = ("aws.greengrass.Nucleus",)
#: Once the device has not picked the deployment up within this, it is reported offline.
OFFLINE_AFTER_S = 30.0
POLL_S = 0.25

Log = Callable[[str], None]


@dataclass
class Plan:
    """What will be deployed: the target, the full component spec, and why each entry is there."""

    thing: str
    thing_arn: str
    spec: dict[str, dict[str, Any]]
    kept: dict[str, str] = field(default_factory=dict)
    from_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    device_status: str = ""
    #: the thing group whose deployment already gives the device this very version (nothing to do:
    #: a thing deployment naming it would only pin it, and a later group update would conflict)
    already_from: str | None = None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _thing_arn(iot: Any, thing: str) -> str:
    try:
        return str(iot.describe_thing(thingName=thing)["thingArn"])
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise ComponentDevError(
                f"unknown thing {thing!r}: no such IoT thing in this account/region "
                "(`mlops-edge devices` lists the core devices)"
            ) from exc
        raise


def _core_device(greengrass: Any, thing: str) -> dict[str, Any]:
    try:
        return dict(greengrass.get_core_device(coreDeviceThingName=thing))
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise ComponentDevError(
                f"thing {thing!r} is not a Greengrass core device: it has never connected to Greengrass "
                "(start it, e.g. `mlops-edge device run`, then retry)"
            ) from exc
        raise


def installed(greengrass: Any, thing: str) -> dict[str, dict[str, Any]]:
    """name -> installed component (version, lifecycleState, ...), every one, roots or not."""
    pages = greengrass.get_paginator("list_installed_components").paginate(
        coreDeviceThingName=thing, topologyFilter="ALL"
    )
    return {c["componentName"]: c for page in pages for c in page.get("installedComponents", [])}


def group_pins(iot: Any, greengrass: Any, thing: str) -> dict[str, dict[str, str]]:
    """{thing group: {component: version}} of the latest deployment to each group the thing is in."""
    pins: dict[str, dict[str, str]] = {}
    for page in iot.get_paginator("list_thing_groups_for_thing").paginate(thingName=thing):
        for group in page.get("thingGroups", []):
            deployments = greengrass.list_deployments(
                targetArn=group["groupArn"], historyFilter="LATEST_ONLY"
            ).get("deployments", [])
            for summary in deployments:
                if summary.get("deploymentStatus") not in ("ACTIVE", "COMPLETED"):
                    continue
                found = greengrass.get_deployment(deploymentId=summary["deploymentId"])
                pins[group["groupName"]] = {
                    name: str(spec.get("componentVersion"))
                    for name, spec in (found.get("components") or {}).items()
                }
    return pins


def plan(
    *,
    iot: Any,
    greengrass: Any,
    thing: str,
    name: str,
    version: str,
    merge: dict[str, Any] | None = None,
) -> Plan:
    """The deployment that puts ``name`` ``version`` on ``thing`` and keeps the rest; refuses
    (ComponentDevError) an unknown thing, a thing that never connected, or a group pin conflict."""
    arn = _thing_arn(iot, thing)
    device = _core_device(greengrass, thing)
    pins = group_pins(iot, greengrass, thing)
    for group, components in sorted(pins.items()):
        pinned = components.get(name)
        if pinned is not None and pinned != version:
            raise ComponentDevError(
                f"thing group {group!r}, which {thing} is in, deploys {name} {pinned}: Greengrass runs one "
                f"version of a component and fails a deployment whose versions conflict, so {version} cannot "
                f"reach {thing} through a thing deployment. Use a device that is not in {group!r}, "
                "or ship the change through the pipeline"
            )
    already = [group for group, components in sorted(pins.items()) if components.get(name) == version]
    if already:
        return Plan(thing, arn, {}, {}, pins, str(device.get("status") or ""), already_from=already[0])
    from_groups = {c for components in pins.values() for c in components}
    kept = {
        component: str(info["componentVersion"])
        for component, info in installed(greengrass, thing).items()
        if component != name and component not in from_groups and component not in NOT_KEPT
    }
    spec: dict[str, dict[str, Any]] = {c: {"componentVersion": v} for c, v in sorted(kept.items())}
    spec[name] = {"componentVersion": version}
    if merge:
        spec[name]["configurationUpdate"] = {"merge": json.dumps(merge, sort_keys=True)}
    return Plan(thing, arn, spec, kept, pins, str(device.get("status") or ""))


def reset_plan(*, iot: Any, greengrass: Any, thing: str) -> Plan:
    """The deployment that hands ``thing`` back to its thing groups: no components of its own, so
    what thing deployments (this loop's included) gave it goes; ``kept`` lists what goes."""
    arn = _thing_arn(iot, thing)
    device = _core_device(greengrass, thing)
    latest = greengrass.list_deployments(targetArn=arn, historyFilter="LATEST_ONLY").get("deployments", [])
    own: dict[str, str] = {}
    for summary in latest:
        found = greengrass.get_deployment(deploymentId=summary["deploymentId"])
        own = {n: str(spec.get("componentVersion")) for n, spec in (found.get("components") or {}).items()}
    return Plan(thing, arn, {}, own, group_pins(iot, greengrass, thing), str(device.get("status") or ""))


def start(greengrass: Any, deployment_plan: Plan, *, name: str, update_timeout_s: int = 60) -> str:
    """CreateDeployment to the thing (the pipeline's policies); returns the deployment id."""
    try:
        return create_deployment(
            greengrass,
            target_arn=deployment_plan.thing_arn,
            name=f"mlops-edge-dev-{name}",
            spec=deployment_plan.spec,
            deployment={"component_update_timeout_s": update_timeout_s, "in_progress_timeout_minutes": 10},
            token_seed=uuid.uuid4().hex,
        )
    except Exception as exc:  # DeploymentFailed (refused) or a TransientError
        raise ComponentDevError(str(exc)) from exc


def _status_line(result: dict[str, Any]) -> str:
    """``SUCCEEDED``, ``IN_PROGRESS (QUEUED)``, or a failure's detail (which starts with its status)."""
    status, detail = str(result["status"]), str(result.get("detail") or "")
    if not detail or detail == status:
        return status
    return detail if detail.startswith(status) else f"{status} ({detail})"


def _states(components: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        name: f"{info.get('componentVersion')} {info.get('lifecycleState') or '?'}"
        for name, info in components.items()
    }


def watch(
    greengrass: Any,
    thing: str,
    deployment_id: str,
    *,
    log: Log,
    timeout_s: float = 300.0,
    offline_after_s: float = OFFLINE_AFTER_S,
) -> dict[str, Any]:
    """Print the deployment's and each component's state as they change until the device's result
    for this deployment is final; returns it (``status`` SUCCEEDED or FAILED, ``detail``)."""
    started = time.monotonic()
    seen_status, seen_states = "", _states(installed(greengrass, thing))
    picked_up = False
    while True:
        elapsed = time.monotonic() - started
        try:
            result = device_status(greengrass, thing, deployment_id)
        except PipelineError as exc:  # TransientError: the control plane kept failing
            raise ComponentDevError(f"cannot read deployment {deployment_id} on {thing}: {exc}") from exc
        line = _status_line(result)
        if line != seen_status:
            log(f"{elapsed:6.1f}s  deployment {line}")
            seen_status = line
        picked_up = picked_up or (result["status"] != "PENDING" and result["detail"] != "QUEUED")
        states = _states(installed(greengrass, thing))
        for name in sorted(states):
            if states[name] != seen_states.get(name):
                log(f"{elapsed:6.1f}s  {name} {states[name]}")
        seen_states = states
        if result["status"] in ("SUCCEEDED", "FAILED"):
            return result
        if not picked_up and elapsed > offline_after_s:
            raise ComponentDevError(_offline(greengrass, thing, deployment_id, elapsed))
        if elapsed > timeout_s:
            raise ComponentDevError(
                f"deployment {deployment_id} still {result['status']} on {thing} after {timeout_s:.0f} s"
            )
        time.sleep(POLL_S)


def _offline(greengrass: Any, thing: str, deployment_id: str, elapsed: float) -> str:
    device = greengrass.get_core_device(coreDeviceThingName=thing)
    last = device.get("lastStatusUpdateTimestamp")
    when = last.isoformat() if hasattr(last, "isoformat") else str(last or "never")
    return (
        f"{thing} has not picked up deployment {deployment_id} in {elapsed:.0f} s: the device looks offline "
        f"(last status report {when}). The deployment stays queued and runs when it connects; cancel it "
        f"with `aws greengrassv2 cancel-deployment --deployment-id {deployment_id}`"
    )
