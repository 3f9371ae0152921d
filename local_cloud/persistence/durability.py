"""The dispatch layer's hook: a served mutating request's effect is durable before its response leaves."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local_cloud.persistence.moto_state import SERVICES, save_service
from local_cloud.persistence.mutations import SIGNING_NAMES, is_mutating, signing_service
from local_cloud.persistence.s3_bodies import blobs_for

LOG = logging.getLogger(__name__)

#: Tries at a snapshot that a concurrent request's mutation interrupted (see _save_while_others_write).
SNAPSHOT_ATTEMPTS = 8


def _save_while_others_write(saver: Callable[[], object]) -> None:
    """Run ``saver``, starting again when another request mutated a dict or set it was walking.

    moto serves requests on several threads and its backends have no lock, so pickling a service
    while another request of that service adds a thing can raise "OrderedDict mutated during
    iteration" (seen with 200 things registered from 16 threads). Failing the request would answer
    500 for a change that was made, and a client's retry then meets AlreadyExists; a new snapshot
    is right instead, since it covers the interrupted mutation or that request commits after it.
    """
    for attempt in range(SNAPSHOT_ATTEMPTS):
        try:
            saver()
            return
        except RuntimeError as exc:
            if "during iteration" not in str(exc) or attempt == SNAPSHOT_ATTEMPTS - 1:
                raise
            time.sleep(0.001 * 2**attempt)


class Durability:
    """Makes a served mutating request's effect durable before its response leaves (see module doc)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.savers: dict[str, Callable[[], object]] = {
            service: (lambda service=service: save_service(state_dir, service)) for service in SERVICES
        }
        self._lock = threading.Lock()
        self._service_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._issued: dict[str, int] = defaultdict(int)
        self._saved: dict[str, int] = defaultdict(int)
        self.stats: dict[str, list[float]] = defaultdict(list)  # service -> snapshot seconds
        self.failures = 0
        self.requests: dict[str, int] = defaultdict(int)  # service -> mutating requests answered
        blobs_for(state_dir)

    def register(self, service: str, saver: Callable[[], object]) -> None:
        """A provider's own state, saved by ``saver`` after a mutating request signed for ``service``."""
        self.savers[service] = saver

    def after(self, request: Any, status: int) -> None:
        """Called with every served request before its response is sent."""
        if status >= 500 or not is_mutating(request):
            return  # a failed request changed nothing that was acknowledged
        service = SIGNING_NAMES.get(signing_service(request))
        if service is not None:
            self.requests[service] += 1
            self.commit(service)

    def commit(self, service: str) -> None:
        """Durably save ``service``'s state as it is now (or later); shared by concurrent callers."""
        saver = self.savers.get(service)
        if saver is None:
            return
        with self._lock:
            self._issued[service] += 1
            ticket = self._issued[service]
        with self._service_locks[service]:
            if self._saved[service] >= ticket:
                return  # a snapshot taken after our mutation already covers it
            with self._lock:
                covered = self._issued[service]
            started = time.perf_counter()
            try:
                _save_while_others_write(saver)
            except Exception:
                self.failures += 1
                LOG.exception("cannot make %s state durable", service)
                raise
            self.stats[service].append(time.perf_counter() - started)
            self._saved[service] = covered

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for service, times in self.stats.items():
            ordered = sorted(times)
            out[service] = {
                "requests": self.requests.get(service, 0),
                "snapshots": len(ordered),
                "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
                "max_ms": round(1000 * ordered[-1], 2),
                "total_ms": round(1000 * sum(ordered), 1),
            }
        return out
