"""Device status for the control plane: the fleet-status heartbeat."""

from .fleet import FleetStatusReporter, component_statuses, fleet_status

__all__ = ["FleetStatusReporter", "component_statuses", "fleet_status"]
