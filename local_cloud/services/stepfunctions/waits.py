"""Wait states that wait exactly as long as AWS says, inside moto's ASL interpreter (moto==5.2.5).

AWS (Amazon States Language, Wait state): ``Seconds``/``SecondsPath`` wait that many seconds (an
integer, which moto already checks); ``Timestamp``/``TimestampPath`` wait "until an absolute time",
an RFC 3339 timestamp that may carry fractional seconds (``2016-03-14T01:59:00.5Z``).

moto 5.2.5 got the timestamp forms wrong, and a local run (short, adaptive polls) notices it:

1. the fraction was dropped and the remaining time truncated to whole seconds
   (``int(delta.total_seconds())``), so a wait until 0.9 s from now did not wait at all, and one
   until 1.7 s from now ended 0.7 s early;
2. the target was compared with ``datetime.now()``, the machine's *local* time, although the
   timestamp is UTC (``Z``): off by hours outside UTC;
3. the wait loop counted whole seconds (``int(t1 - t0)``): a wait that woke early (an unrelated
   interrupt) could end up to a second early or wait a whole extra second.

Patched here: the timestamp forms compute the exact remaining time in UTC (a past timestamp waits
0 s, as AWS), and the wait loop waits until a monotonic deadline, to the millisecond, and still
ends at once when the execution is stopped. :func:`apply` refuses another moto version or moved
internals (``verify``), like the other interpreter patches of this package.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from typing import Any

from local_cloud.services.stepfunctions.limits import MotoInternalsChanged, pin_problems, resolve

_WAIT = "moto.stepfunctions.parser.asl.component.state.wait.wait_function"
#: what the patches replace, and the source fragments they rely on
FINGERPRINTS: dict[tuple[str, str], tuple[str, ...]] = {
    (f"{_WAIT}.wait_function", "WaitFunction._wait_interval"): (
        "env.program_state_event.wait(wait_seconds)",
        "round_sec_waited = int(t1 - t0)",
        "env.is_running()",
    ),
    (f"{_WAIT}.timestamp", "Timestamp._get_wait_seconds"): (
        "timestamp = self._from_timestamp_string(timestamp=timestamp_str)",
        "raise FailureEventException(self._create_failure_event(env, timestamp_str))",
        "delta = timestamp - datetime.datetime.now()",
    ),
}
# RFC 3339 as moto's parser accepts it (``TIMESTAMP_PATTERN``), with the fraction kept
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z$")

_lock = threading.Lock()
_applied = False


def parse_timestamp(text: str) -> datetime.datetime | None:
    """A Wait state's UTC timestamp with its fraction (to the microsecond), or None if invalid."""
    match = _TIMESTAMP.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    try:
        whole = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    fraction = float(match.group(2) or 0.0)
    return whole.replace(tzinfo=datetime.UTC) + datetime.timedelta(seconds=fraction)


def seconds_until(timestamp: datetime.datetime) -> float:
    """Seconds from now (UTC) until ``timestamp``; 0 for a time already past."""
    return max(0.0, (timestamp - datetime.datetime.now(datetime.UTC)).total_seconds())


def verify() -> None:
    """Raise :class:`MotoInternalsChanged` unless moto is 5.2.5 and the patched code is as read."""
    problems = pin_problems("local_cloud/services/stepfunctions/waits.py", "moto's Wait state", FINGERPRINTS)
    if problems:
        raise MotoInternalsChanged("moto's Wait state moved:\n  " + "\n  ".join(problems))


def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
    """Wait until a monotonic deadline; end early only when the execution stops."""
    deadline = time.monotonic() + max(0.0, float(wait_seconds))
    while env.is_running():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if env.program_state_event.wait(left) and env.is_running():
            time.sleep(min(left, 0.005))  # an unrelated interrupt left the event set: keep waiting


def _timestamp_wait_seconds(self: Any, env: Any) -> float:
    """The exact time left until the state's timestamp (moto's failure event if it is invalid)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )

    self.string.eval(env=env)
    text = env.stack.pop()
    timestamp = parse_timestamp(text)
    if timestamp is None:
        raise FailureEventException(self._create_failure_event(env, text))
    return seconds_until(timestamp)


def apply() -> None:
    """Patch moto's Wait state once per process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        verify()
        resolve(f"{_WAIT}.wait_function", "WaitFunction")._wait_interval = _wait_interval
        resolve(f"{_WAIT}.timestamp", "Timestamp")._get_wait_seconds = _timestamp_wait_seconds
        _applied = True
