"""The decision log: one JSON object per line, appended by the endpoint, read by ``iam.usage``.

Records (``"type"``):

- ``decision``: one check of one request — ``time``, ``request_id``, ``mode``, ``principal``
  (the session ARN), ``role``, ``session``, ``service``/``operation`` (botocore's names),
  ``action``, ``resources``, ``decision`` (``Allowed``, ``ImplicitlyDenied``,
  ``ExplicitlyDenied``), ``statements`` (``policy#sid`` that decided), ``reason`` (``operation``
  or why a dependent action is checked), ``refused`` (true only when the refusal was sent),
  ``message`` (AWS's text for a denial), ``not_enforced`` (dependent actions not checked, on the
  operation's record), ``elapsed_ms`` (the whole authorization of the request);
- ``error``: a request that could not be decided (``error`` names the cause; ``refused`` is true
  when enforce mode answered it with a server error);
- ``trust``: a service assuming a role (``principal`` is the service, ``action``
  ``sts:AssumeRole``, ``resources`` the role, ``source_arn``);
- ``policies``: a snapshot of a role's policy documents each time they are (re)read, so the log
  alone tells what each role was granted.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class DecisionLog:
    """Appends records to ``path`` (JSON Lines), one write per record, thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(
            {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), **record},
            default=str,
            separators=(",", ":"),
        )
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()
