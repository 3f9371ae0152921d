"""Component configuration store and the deployment merge/reset rules."""

from .store import ConfigStore, apply_update, deep_merge

__all__ = ["ConfigStore", "apply_update", "deep_merge"]
