"""Deployments as IoT job executions, delivered over MQTT (docs/contracts.md §4).

The control plane connects to the broker with its own privileged identity, listens for the
devices' ``$next/get``, ``{jobId}/update`` and fleet-status health reports, and publishes
``notify-next`` whenever what a device should do next changes. Execution statuses reported by
devices become the effective deployment statuses of ListEffectiveDeployments; health reports
become core devices and installed components.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from local_cloud.services.greengrassv2.models import PENDING_EXECUTION, TERMINAL_EXECUTION, GreengrassState

LOG = logging.getLogger(__name__)

_DEVICE_STATUSES = {"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"}


def _json_list(value: Any) -> list[str]:
    """The nucleus reports error stacks/types as JSON-encoded lists inside a string map."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
            return [str(v) for v in parsed] if isinstance(parsed, list) else [value]
        except ValueError:
            return [value]
    return []


class JobService:
    """Job executions per thing + the MQTT connection that carries them."""

    def __init__(
        self,
        state: GreengrassState,
        members_of: Callable[[str, str], list[str]],
        minute_s: Callable[[], float] = lambda: 60.0,
    ) -> None:
        self.state = state
        self.minute_s = minute_s  # seconds per "minute" of job timeouts (tests shorten it)
        self.members_of = members_of  # (kind, name) -> thing names, resolved through moto IoT
        self.client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- MQTT ----------------------------------------------------------------------------------
    def connect(self, host: str, port: int, ca: str, cert: str, key: str, client_id: str) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(0.1, 2)
        client.connect(host, port)
        client.loop_start()
        self.client = client
        if not self._connected.wait(5):
            LOG.warning("control plane could not connect to the MQTT broker yet")
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="gg-jobs-ticker")
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        options = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe(
            [
                ("$aws/things/+/jobs/$next/get", options),
                ("$aws/things/+/jobs/+/update", options),
                ("$aws/things/+/greengrassv2/health/json", options),
            ]
        )
        self._connected.set()

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.publish(topic, json.dumps(payload), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        try:
            payload = json.loads(msg.payload or b"{}")
        except ValueError:
            payload = {}
        try:
            thing = parts[2]
            if parts[3:] == ["jobs", "$next", "get"]:
                self.next_get(thing, payload.get("clientToken"))
            elif parts[3] == "jobs" and parts[-1] == "update":
                self.update(thing, parts[4], payload)
            elif parts[3:] == ["greengrassv2", "health", "json"]:
                self.health(thing, payload)
        except Exception:
            LOG.exception("could not handle %s", msg.topic)

    # -- executions ----------------------------------------------------------------------------
    def _execution_message(self, thing: str) -> dict[str, Any]:
        now = int(time.time())
        execution = self.next_execution(thing)
        if execution is None:
            return {"timestamp": now}
        deployment = self.state.deployments[execution["deploymentId"]]
        return {
            "timestamp": now,
            "execution": {
                "jobId": deployment["iotJobId"],
                "thingName": thing,
                "status": execution["status"],
                "queuedAt": int(execution["queuedAt"]),
                "lastUpdatedAt": int(execution["modifiedTimestamp"]),
                "executionNumber": execution["executionNumber"],
                "versionNumber": execution["versionNumber"],
                "jobDocument": deployment["jobDocument"],
            },
        }

    def notify(self, thing: str) -> None:
        with self.state.lock:
            message = self._execution_message(thing)
        self._publish(f"$aws/things/{thing}/jobs/notify-next", message)

    def next_execution(self, thing: str) -> dict[str, Any] | None:
        """IoT Jobs order: an IN_PROGRESS execution first, else the oldest QUEUED one."""
        self.reconcile(thing)
        pending = [
            e for e in self.state.executions.get(thing, {}).values() if e["status"] in PENDING_EXECUTION
        ]
        if not pending:
            return None
        pending.sort(key=lambda e: (e["status"] != "IN_PROGRESS", e["queuedAt"]))
        return pending[0]

    def reconcile(self, thing: str) -> bool:
        """Give a thing the executions of active group deployments it joined after creation."""
        changed = False
        with self.state.lock:
            for deployment in self.state.deployments.values():
                if not deployment["isLatestForTarget"] or deployment["deploymentStatus"] != "ACTIVE":
                    continue
                if deployment["deploymentId"] in self.state.executions.get(thing, {}):
                    continue
                if deployment["_targetKind"] != "thinggroup":
                    continue
                if thing in self.members_of("thinggroup", deployment["_targetName"]):
                    self.add_execution(thing, deployment)
                    changed = True
            if changed:
                self.state.save()
        return changed

    def add_execution(self, thing: str, deployment: dict[str, Any]) -> None:
        now = time.time()
        executions = self.state.executions.setdefault(thing, {})
        executions[deployment["deploymentId"]] = {
            "deploymentId": deployment["deploymentId"],
            "status": "QUEUED",
            "reason": "",
            "queuedAt": now,
            "startedAt": None,
            "modifiedTimestamp": now,
            "executionNumber": len(executions) + 1,
            "versionNumber": 1,
            "statusDetails": {},
        }

    def supersede(self, target_arn: str, new_id: str) -> list[str]:
        """A new deployment to a target replaces the old one: queued executions are canceled."""
        touched: list[str] = []
        for deployment in self.state.deployments.values():
            if deployment["targetArn"] != target_arn or deployment["deploymentId"] == new_id:
                continue
            if deployment["isLatestForTarget"]:
                deployment["isLatestForTarget"] = False
                if deployment["deploymentStatus"] == "ACTIVE":
                    deployment["deploymentStatus"] = "INACTIVE"
            for thing, executions in self.state.executions.items():
                execution = executions.get(deployment["deploymentId"])
                if execution and execution["status"] == "QUEUED":
                    self._set(execution, "CANCELED", "superseded by a newer deployment to the same target")
                    touched.append(thing)
        return touched

    def cancel(self, deployment_id: str) -> list[str]:
        touched = []
        for thing, executions in self.state.executions.items():
            execution = executions.get(deployment_id)
            if execution and execution["status"] in PENDING_EXECUTION:
                self._set(execution, "CANCELED", "the deployment was canceled")
                touched.append(thing)
        return touched

    @staticmethod
    def _set(
        execution: dict[str, Any], status: str, reason: str = "", details: dict[str, Any] | None = None
    ) -> None:
        execution["status"] = status
        execution["reason"] = reason
        execution["modifiedTimestamp"] = time.time()
        execution["versionNumber"] += 1
        if details is not None:
            execution["statusDetails"] = details

    def next_get(self, thing: str, client_token: str | None) -> None:
        self.touch_device(thing)
        with self.state.lock:
            message = self._execution_message(thing)
        if client_token:
            message["clientToken"] = client_token
        self._publish(f"$aws/things/{thing}/jobs/$next/get/accepted", message)

    def update(self, thing: str, job_id: str, payload: dict[str, Any]) -> None:
        self.touch_device(thing)
        status = str(payload.get("status", ""))
        details = payload.get("statusDetails") or {}
        with self.state.lock:
            deployment = next((d for d in self.state.deployments.values() if d["iotJobId"] == job_id), None)
            execution = (
                self.state.executions.get(thing, {}).get(deployment["deploymentId"]) if deployment else None
            )
            if execution is None or status not in _DEVICE_STATUSES:
                self._publish(
                    f"$aws/things/{thing}/jobs/{job_id}/update/rejected",
                    {
                        "code": "ResourceNotFound" if execution is None else "InvalidRequest",
                        "message": f"no execution of job {job_id} for {thing}"
                        if execution is None
                        else f"bad status {status}",
                        "timestamp": int(time.time()),
                    },
                )
                return
            if execution["status"] in TERMINAL_EXECUTION:
                self._publish(
                    f"$aws/things/{thing}/jobs/{job_id}/update/rejected",
                    {
                        "code": "InvalidStateTransition",
                        "message": f"execution is {execution['status']}",
                        "timestamp": int(time.time()),
                    },
                )
                return
            if status == "IN_PROGRESS" and execution["startedAt"] is None:
                execution["startedAt"] = time.time()
            # the API's statusDetails has only errorStack/errorTypes; the detailed status (e.g.
            # FAILED_ROLLBACK_COMPLETE) is kept and surfaces in ``reason`` when there is no cause
            detailed = details.get("detailed-deployment-status")
            reason = str(details.get("deployment-failure-cause") or detailed or "")
            self._set(
                execution,
                status,
                reason,
                {
                    "detailedDeploymentStatus": detailed,
                    "errorStack": _json_list(details.get("deployment-error-stack")),
                    "errorTypes": _json_list(details.get("deployment-error-types")),
                },
            )
            finished = status in ("SUCCEEDED", "FAILED", "REJECTED")
            if (
                deployment["_targetKind"] == "thing"
                and finished
                and deployment["deploymentStatus"] == "ACTIVE"
            ):
                deployment["deploymentStatus"] = "COMPLETED" if status == "SUCCEEDED" else "FAILED"
            self.state.save()
            accepted = {
                "timestamp": int(time.time()),
                "executionState": {"status": status, "versionNumber": execution["versionNumber"]},
            }
        self._publish(f"$aws/things/{thing}/jobs/{job_id}/update/accepted", accepted)
        if status != "IN_PROGRESS":
            self.notify(thing)

    # -- core devices --------------------------------------------------------------------------
    def touch_device(self, thing: str) -> dict[str, Any]:
        with self.state.lock:
            device = self.state.core_devices.get(thing)
            if device is None:
                device = self.state.core_devices[thing] = {
                    "coreDeviceThingName": thing,
                    "status": "HEALTHY",
                    "lastStatusUpdateTimestamp": time.time(),
                    "coreVersion": None,
                    "platform": None,
                    "architecture": None,
                    "runtime": None,
                    "components": [],
                }
                self.state.save()
            return device

    def health(self, thing: str, payload: dict[str, Any]) -> None:
        device = self.touch_device(thing)
        now = time.time()
        with self.state.lock:
            device["status"] = payload.get("overallDeviceStatus") or device["status"]
            device["lastStatusUpdateTimestamp"] = now
            device["coreVersion"] = payload.get("nucleusVersion") or device["coreVersion"]
            device["platform"] = payload.get("platform") or device["platform"]
            device["architecture"] = payload.get("architecture") or device["architecture"]
            device["runtime"] = payload.get("runtime") or device.get("runtime") or "aws_nucleus_classic"
            if "components" in payload:
                previous = {c["componentName"]: c for c in device["components"]}
                components = []
                for c in payload.get("components") or []:
                    old = previous.get(c.get("componentName"), {})
                    state = c.get("state") or c.get("lifecycleState")
                    changed = old.get("lifecycleState") != state or old.get("componentVersion") != c.get(
                        "version"
                    )
                    details = c.get("statusDetails") or {}
                    arns = c.get("fleetConfigArns") or []
                    components.append(
                        {
                            "componentName": c.get("componentName"),
                            "componentVersion": c.get("version"),
                            "lifecycleState": state,
                            "lifecycleStateDetails": details.get("errorMessage") or "",
                            "isRoot": bool(c.get("isRoot", False)),
                            "lastStatusChangeTimestamp": now
                            if changed
                            else old.get("lastStatusChangeTimestamp", now),
                            "lastReportedTimestamp": now,
                            "lastInstallationSource": arns[-1] if arns else "LOCAL_DEPLOYMENT",
                            "lifecycleStatusCodes": details.get("statusCodes") or [],
                        }
                    )
                device["components"] = components
            self.state.save()

    # -- time ----------------------------------------------------------------------------------
    def _tick(self) -> None:
        """Time out IN_PROGRESS executions past the job's in-progress timeout."""
        while not self._stop.wait(1.0):
            touched = []
            with self.state.lock:
                now = time.time()
                for thing, executions in self.state.executions.items():
                    for execution in executions.values():
                        if execution["status"] != "IN_PROGRESS" or not execution["startedAt"]:
                            continue
                        deployment = self.state.deployments[execution["deploymentId"]]
                        minutes = (
                            (deployment.get("iotJobConfiguration") or {}).get("timeoutConfig") or {}
                        ).get("inProgressTimeoutInMinutes")
                        if minutes and now - execution["startedAt"] > float(minutes) * self.minute_s():
                            self._set(execution, "TIMED_OUT", f"no result within {minutes} minutes")
                            touched.append(thing)
                if touched:
                    self.state.save()
            for thing in touched:
                self.notify(thing)
