"""Run a core in the foreground until SIGTERM/SIGINT (what ``mlops-edge device run`` calls)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from .core import Core, CoreSettings

log = logging.getLogger(__name__)


def run_core(settings: CoreSettings) -> int:
    """Start the core, write ``<root>/core.pid`` once ready, stop cleanly on a signal."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    core = Core(settings)
    core.start()
    pid_file = Path(settings.root) / "core.pid"
    pid_file.write_text(str(os.getpid()))
    print(f"core {settings.identity.thing_name} ready (pid {os.getpid()}, root {settings.root})", flush=True)
    stop.wait()
    log.info("stopping core %s", settings.identity.thing_name)
    try:
        core.stop()
    finally:
        pid_file.unlink(missing_ok=True)
    return 0
