"""Simulated AWS IoT Greengrass V2 core device (a nucleus stand-in).

Concerns apart, as in the nucleus: ``deployment`` (IoT Jobs, queue, task, activator, status),
``lifecycle`` (state table, supervisor), ``components`` (recipes, variables, resolution, store,
cloud), ``config`` (component configuration, the effective config on disk), ``ipc``
(eventstream-RPC server, one module per operation family), ``status`` (fleet status); ``core``
wires them.
"""

from .core import Core, CoreSettings
from .identity import Identity

__all__ = ["Core", "CoreSettings", "Identity"]
