"""Device status for the control plane: the fleet-status heartbeat."""

from .fleet import FleetStatusReporter, fleet_status

__all__ = ["FleetStatusReporter", "fleet_status"]
