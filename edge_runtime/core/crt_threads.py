"""Python thread states for awscrt's event-loop threads, kept instead of made per callback.

awscrt enters Python from its own threads through ``PyGILState_Ensure``/``Release``: a thread
with no Python thread state gets a new one for the callback and loses it at the end, so every
message received allocates and frees a thread state, and anything ``threading.local`` starts
empty each time. One more ``Ensure``, never released, keeps the state for the thread's life.
(The inference component has its own copy: its artifact does not carry the core.)
"""

from __future__ import annotations

import ctypes
import threading

_KEPT: set[int] = set()


def keep_thread_state() -> None:
    """Call at the start of an awscrt callback: from then on that thread keeps its thread state."""
    ident = threading.get_ident()
    if ident not in _KEPT:
        ctypes.pythonapi.PyGILState_Ensure()
        _KEPT.add(ident)
