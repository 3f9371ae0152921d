"""Polls an execution's history until it ends, feeding a view on the way."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from mlops_edge.report.history import ExecutionProgress, HistoryCursor
from mlops_edge.report.live import View

DevicePoller = Callable[[ExecutionProgress], Mapping[str, str] | None]


def follow_execution(
    sfn: Any,
    execution_arn: str,
    view: View,
    *,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    device_poller: DevicePoller | None = None,
    device_poll_s: float = 1.0,
) -> ExecutionProgress:
    """Block until the execution ends (or ``timeout_s`` passes), keeping ``view`` current.

    Each poll reads only the new history events (:class:`HistoryCursor`), twice a second by
    default: the view stays under a second behind for two calls a second, a rate that leaves
    Step Functions' per-account API throttling quota room for other followers (the console).

    ``device_poller`` is asked for per-device statuses at most every ``device_poll_s`` seconds;
    it sees the progress so it can stay quiet until there is a deployment to ask about.
    """
    progress = ExecutionProgress()
    cursor = HistoryCursor(sfn, execution_arn)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    next_device_poll = 0.0
    with view:
        while True:
            changed = progress.feed(cursor.new_events())
            view.update(progress, changed)
            now = time.monotonic()
            if device_poller is not None and now >= next_device_poll:
                next_device_poll = now + device_poll_s
                statuses = device_poller(progress)
                if statuses:
                    view.devices(statuses)
            if progress.status != "RUNNING":
                if device_poller is not None:
                    statuses = device_poller(progress)
                    if statuses:
                        view.devices(statuses)
                return progress
            if deadline is not None and now > deadline:
                return progress
            time.sleep(poll_s)


def greengrass_device_poller(greengrass: Any, things: list[str], *, per_poll: int = 10) -> DevicePoller:
    """Each device's own result for the execution's deployment (``ListEffectiveDeployments``).

    At most ``per_poll`` devices are asked per poll, in turn, and the others keep their last
    status: a fleet of 500 is not 500 calls a second.
    """
    statuses = {thing: "waiting for deployment" for thing in things}
    turn = 0

    def poll(progress: ExecutionProgress) -> dict[str, str] | None:
        nonlocal turn
        output = progress.output_of("Deploy") or {}
        deployment = output.get("deployment") or {}
        deployment_id = deployment.get("deployment_id")
        if not deployment_id or not things:
            return dict(statuses)
        stage = stage_label(output)
        for _ in range(min(per_poll, len(things))):
            thing = things[turn % len(things)]
            turn += 1
            status = _device_status(greengrass, thing, deployment_id)
            if status != "QUEUED" or not stage:
                statuses[thing] = f"{stage}{status}"
            elif not statuses[thing].startswith("stage "):
                # not reached by this stage's deployment (yet): a later stage's device, most likely
                statuses[thing] = "waiting for its stage"
            # else: an earlier stage's device keeps the status it ended that stage with
        return dict(statuses)

    return poll


def stage_label(state: Mapping[str, Any]) -> str:
    """``"stage canary (1/2): "`` for a state document of a staged rollout, else ``""``."""
    rollout, config = state.get("rollout") or {}, state.get("config") or {}
    stages = (config.get("rollout") or {}).get("stages") or []
    index = (state.get("deployment") or {}).get("stage", rollout.get("index"))
    if len(stages) < 2 or not isinstance(index, int) or not 0 <= index < len(stages):
        return ""
    return f"stage {stages[index]['name']} ({index + 1}/{len(stages)}): "


def _device_status(greengrass: Any, thing: str, deployment_id: str | None) -> str:
    from botocore.exceptions import ClientError

    if not deployment_id:
        return "waiting for deployment"
    try:
        effective = greengrass.list_effective_deployments(coreDeviceThingName=thing)
    except ClientError:  # a device not known yet is a status, not an error
        return "not reported yet"
    found = [e for e in effective.get("effectiveDeployments", []) if e["deploymentId"] == deployment_id]
    if not found:
        return "QUEUED"
    detailed = (found[0].get("statusDetails") or {}).get("detailedDeploymentStatus")
    return found[0]["coreDeviceExecutionStatus"] + (f" ({detailed})" if detailed else "")
