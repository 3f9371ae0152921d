"""Simulated AWS IoT Greengrass V2 core device (a nucleus stand-in).

Concerns apart, as in the nucleus: ``deployment`` (queue, task, status), ``lifecycle`` (state
table, supervisor), ``components`` (recipes, variables, resolution, store, cloud), ``config``,
``ipc`` (eventstream-RPC server, one module per operation family), ``status`` (fleet status).
"""

from .core import Core, CoreSettings
from .identity import Identity

__all__ = ["Core", "CoreSettings", "Identity"]
