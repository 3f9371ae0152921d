"""Lambda logs from CloudWatch Logs: printed by `mlops-edge logs`, saved beside a run's report.

Saving them at the end of a local run matters: the local cloud stops with the run, and a person
reading a failed report should find the failing handler's log in a file next to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError


def log_group(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def iter_events(cw: Any, group: str, *, start_ms: int, pattern: str = "") -> Iterator[tuple[int, str]]:
    """``(timestamp_ms, message)`` of a log group since ``start_ms``; nothing if the group is missing."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "interleaved": True}
    if pattern:
        kwargs["filterPattern"] = pattern
    try:
        for page in cw.get_paginator("filter_log_events").paginate(**kwargs):
            for event in page.get("events", []):
                yield event["timestamp"], event["message"].rstrip("\n")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def format_event(timestamp_ms: int, message: str) -> str:
    return f"{time.strftime('%H:%M:%S', time.localtime(timestamp_ms / 1000))} {message}"


def save_function_logs(
    cw: Any, function_names: Iterable[str], *, start_ms: int, out_dir: Path
) -> dict[str, Path]:
    """Write each function's events since ``start_ms`` to ``out_dir/<function>.log``; skips empty ones."""
    saved: dict[str, Path] = {}
    for name in function_names:
        lines = [format_event(ts, msg) for ts, msg in iter_events(cw, log_group(name), start_ms=start_ms)]
        if lines:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"{name}.log"
            path.write_text("\n".join(lines) + "\n")
            saved[name] = path
    return saved
