"""The core-device registry: what GetCoreDevice, ListCoreDevices and ListInstalledComponents show.

A core device is not created through the API: it comes into being the first time it talks to us
(a jobs request or a fleet-status report, as in AWS where the nucleus registers itself), and its
health and installed components are whatever its last fleet-status report said. Callers hold the
backend's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local_cloud.services.greengrassv2.exceptions import ResourceNotFoundException

#: ``runtime`` once a fleet-status report arrives without naming one (the Java nucleus does not)
DEFAULT_RUNTIME = "aws_nucleus_classic"


@dataclass
class InstalledComponent:
    name: str | None
    version: str | None
    lifecycle_state: str | None
    lifecycle_details: str
    is_root: bool
    last_status_change: float
    last_reported: float
    installation_source: str
    status_codes: list[str] = field(default_factory=list)

    @classmethod
    def from_report(
        cls, report: dict[str, Any], previous: InstalledComponent | None, now: float
    ) -> InstalledComponent:
        """One entry of a fleet-status report; the status-change time moves only on a change."""
        state = report.get("state") or report.get("lifecycleState")
        version = report.get("version")
        if previous is None or (previous.lifecycle_state, previous.version) != (state, version):
            changed_at = now
        else:
            changed_at = previous.last_status_change
        details = report.get("statusDetails") or {}
        arns = report.get("fleetConfigArns") or []
        return cls(
            name=report.get("componentName"),
            version=version,
            lifecycle_state=state,
            lifecycle_details=details.get("errorMessage") or "",
            is_root=bool(report.get("isRoot", False)),
            last_status_change=changed_at,
            last_reported=now,
            installation_source=arns[-1] if arns else "LOCAL_DEPLOYMENT",
            status_codes=list(details.get("statusCodes") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "componentName": self.name,
            "componentVersion": self.version,
            "lifecycleState": self.lifecycle_state,
            "lifecycleStateDetails": self.lifecycle_details,
            "isRoot": self.is_root,
            "lastStatusChangeTimestamp": self.last_status_change,
            "lastReportedTimestamp": self.last_reported,
            "lastInstallationSource": self.installation_source,
            "lifecycleStatusCodes": list(self.status_codes),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> InstalledComponent:
        return cls(
            name=data["componentName"],
            version=data.get("componentVersion"),
            lifecycle_state=data.get("lifecycleState"),
            lifecycle_details=data.get("lifecycleStateDetails") or "",
            is_root=bool(data.get("isRoot")),
            last_status_change=float(data["lastStatusChangeTimestamp"]),
            last_reported=float(data["lastReportedTimestamp"]),
            installation_source=data.get("lastInstallationSource") or "LOCAL_DEPLOYMENT",
            status_codes=list(data.get("lifecycleStatusCodes") or []),
        )


@dataclass
class CoreDevice:
    thing: str
    last_status_update: float
    status: str = "HEALTHY"
    core_version: str | None = None
    platform: str | None = None
    architecture: str | None = None
    runtime: str | None = None
    components: list[InstalledComponent] = field(default_factory=list)

    def apply_health(self, report: dict[str, Any], now: float) -> None:
        """A fleet-status report: absent fields keep their value; a component list replaces ours."""
        self.status = report.get("overallDeviceStatus") or self.status
        self.last_status_update = now
        self.core_version = report.get("nucleusVersion") or self.core_version
        self.platform = report.get("platform") or self.platform
        self.architecture = report.get("architecture") or self.architecture
        self.runtime = report.get("runtime") or self.runtime or DEFAULT_RUNTIME
        if "components" in report:
            previous = {c.name: c for c in self.components}
            self.components = [
                InstalledComponent.from_report(c, previous.get(c.get("componentName")), now)
                for c in report.get("components") or []
            ]

    def summary(self) -> dict[str, Any]:
        """CoreDevice of ListCoreDevices."""
        return {
            "coreDeviceThingName": self.thing,
            "status": self.status,
            "lastStatusUpdateTimestamp": self.last_status_update,
            "platform": self.platform,
            "architecture": self.architecture,
            "runtime": self.runtime,
        }

    def to_dict(self) -> dict[str, Any]:
        """GetCoreDevice (without tags)."""
        return {**self.summary(), "coreVersion": self.core_version}

    def to_state(self) -> dict[str, Any]:
        return {**self.to_dict(), "components": [c.to_dict() for c in self.components]}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> CoreDevice:
        return cls(
            thing=data["coreDeviceThingName"],
            last_status_update=float(data["lastStatusUpdateTimestamp"]),
            status=data.get("status") or "HEALTHY",
            core_version=data.get("coreVersion"),
            platform=data.get("platform"),
            architecture=data.get("architecture"),
            runtime=data.get("runtime"),
            components=[InstalledComponent.from_state(c) for c in data.get("components") or []],
        )


class DeviceRegistry:
    """Core devices by thing name."""

    def __init__(self) -> None:
        self.devices: dict[str, CoreDevice] = {}

    def touch(self, thing: str, now: float) -> bool:
        """Make sure the device exists; True when it was new (so the caller saves)."""
        if thing in self.devices:
            return False
        self.devices[thing] = CoreDevice(thing, last_status_update=now)
        return True

    def report_health(self, thing: str, report: dict[str, Any], now: float) -> None:
        self.touch(thing, now)
        self.devices[thing].apply_health(report, now)

    def get(self, thing: str) -> CoreDevice:
        device = self.devices.get(thing)
        if device is None:
            raise ResourceNotFoundException(f"Core device {thing} not found", thing, "CORE_DEVICE")
        return device

    def select(self, members: set[str] | None, status: str | None) -> list[CoreDevice]:
        """By thing name; only ``members`` when given (a thing group), only ``status`` when given."""
        return [
            d
            for thing, d in sorted(self.devices.items())
            if (members is None or thing in members) and (not status or d.status == status)
        ]

    def delete(self, thing: str) -> None:
        self.get(thing)
        del self.devices[thing]

    def to_state(self) -> dict[str, dict[str, Any]]:
        return {thing: d.to_state() for thing, d in self.devices.items()}

    @classmethod
    def from_state(cls, data: dict[str, dict[str, Any]]) -> DeviceRegistry:
        registry = cls()
        registry.devices = {thing: CoreDevice.from_state(d) for thing, d in data.items()}
        return registry
