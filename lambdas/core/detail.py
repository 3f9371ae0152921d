"""Per-device detail of an execution in S3, and the bounded summaries the state document keeps.

The layout (keys under the execution's state prefix, :data:`MAX_NAMED`) is
``pipeline.execution_detail``'s; this module writes and reads the objects and words the short
lists of named devices that summaries and error messages carry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, read_object, write_object
from pipeline.execution_detail import MAX_NAMED, detail_uri

#: Longest reason kept for one device in a summary or message (the S3 detail keeps it whole).
REASON_CHARS = 400


def write_detail(s3: Any, config: Mapping[str, Any], name: str, document: Mapping[str, Any]) -> str:
    """Writes ``document`` as this execution's detail object ``name``; returns its URI."""
    body = json.dumps(document, indent=1, sort_keys=True, default=str).encode()
    return write_object(s3, detail_uri(config, name), body, content_type="application/json")


def read_detail(s3: Any, uri: str | None) -> dict[str, Any] | None:
    """The detail object at ``uri``, or None when there is none yet."""
    if not uri:
        return None
    try:
        return json.loads(read_object(s3, uri))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def clip(text: str, limit: int = REASON_CHARS) -> str:
    """``text`` cut in the middle to ``limit`` characters: its start says what failed, its end
    often the error code (Greengrass puts the error stack last)."""
    if len(text) <= limit:
        return text
    keep = limit - 3
    head = keep * 2 // 3
    return f"{text[:head]} … {text[len(text) - (keep - head) :]}"


def named(entries: Sequence[str], *, uri: str, total: int | None = None) -> str:
    """``"a; b; … and 490 more (every device: s3://…)"``: at most :data:`MAX_NAMED` entries."""
    total = len(entries) if total is None else total
    shown = "; ".join(clip(e) for e in entries[:MAX_NAMED])
    more = total - min(len(entries), MAX_NAMED)
    if more > 0:
        return f"{shown}; and {more} more (every device: {uri})"
    return f"{shown} (every device: {uri})"


def counted(counts: Mapping[str, int], total: int) -> str:
    """``"2 failed, 498 succeeded of 500"`` from per-status counts."""
    return ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()) if n) + f" of {total}"
