"""What the IoT job rules (``jobrules.py``) and the IAM facts (``iamfacts.py``) need of the backend.

Why a protocol of its own: both modules take the backend as an argument, and ``models.py`` calls
both; naming the backend's class there would make each of them import ``models.py`` back. They
read and change only these members, so this is what they name, and ``GreengrassBackend`` is one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from local_cloud.services.greengrassv2.deployments import Deployment
from local_cloud.services.greengrassv2.executions import ExecutionBook


class JobState(Protocol):
    """The deployments and their job executions, behind the backend's one re-entrant lock."""

    lock: threading.RLock
    deployments: dict[str, Deployment]  # deploymentId -> record
    executions: ExecutionBook
    clock: Callable[[], float]
    #: The length of a jobs "minute" in seconds (rollout rate, timeouts).
    minute_s: Callable[[], float]

    def save(self) -> None:
        """Write the state to disk (the caller holds the lock or is done changing it)."""
        ...

    def reconcile(self, thing: str) -> list[str]:
        """Give ``thing`` the executions of continuous deployments it joined since their creation;
        the things to notify."""
        ...
