"""Executions for the page: history events and per-state progress as JSON, and the live stream.

The fold from history to per-state progress is :class:`~mlops_edge.report.history.ExecutionProgress`
(the one the terminal view and the run report use); the page only colours what it is told. The
stream reads new events with :class:`~mlops_edge.report.history.HistoryCursor` and labels each
message with the id of the last history event it carries, so a browser that reconnects (its
``Last-Event-ID``) gets exactly the events it missed and a fresh snapshot of every state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import anyio
from anyio import to_thread

from mlops_edge.console.stages import rollout_json
from mlops_edge.report.history import ExecutionProgress, HistoryCursor, StateProgress, fetch_history

__all__ = ["event_json", "execution_stream", "progress_json", "sse"]

#: How often a running execution's history is read: twice a second keeps the page under a second
#: behind for two GetExecutionHistory calls a second (the rate `follow_execution` uses).
POLL_S = 0.5
#: A comment line this often keeps proxies and the browser from timing an idle stream out.
KEEPALIVE_S = 15.0


def _when(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def event_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """A history event as the API returns it, with times as ISO 8601 strings."""
    return {k: _when(v) for k, v in event.items() if k != "ResponseMetadata"}


def _state_status(state: StateProgress, execution_status: str) -> str:
    """The colour a state gets: a Fail state that was entered failed; what an ended execution left
    running was cut short (a Succeed state is never exited in some histories: it succeeded)."""
    if state.kind == "Fail":
        return "failed"
    if state.status != "running" or execution_status == "RUNNING":
        return state.status
    return "succeeded" if state.kind == "Succeed" else "stopped"


def progress_json(progress: ExecutionProgress) -> dict[str, Any]:
    """Every state's status, visits, retries, time and error, the execution's own outcome, and the
    rollout's stages (the Rollout panel: :func:`mlops_edge.console.stages.rollout_json`)."""
    failing = progress.failing_state()
    return {
        "status": progress.status,
        "error": progress.error,
        "cause": progress.cause,
        "failed_state": progress.failed_state or (failing.name if failing else None),
        "started_at": _when(progress.started_at),
        "ended_at": _when(progress.ended_at),
        "states": {
            name: {
                "type": s.kind,
                "status": _state_status(s, progress.status),
                "visits": s.visits,
                "retries": s.retries,
                "failures": s.failures,
                "duration_s": round(s.total_s, 3),
                "error": s.error,
                "cause": s.cause,
            }
            for name, s in progress.states.items()
        },
        "rollout": rollout_json(progress),
    }


def sse(data: Any, *, event: str | None = None, id: int | str | None = None) -> str:
    """One server-sent event (JSON data on one line)."""
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    if event:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return "\n".join(lines) + "\n\n"


async def execution_stream(
    sfn: Any,
    execution_arn: str,
    *,
    last_event_id: int = 0,
    is_disconnected: Callable[[], Awaitable[bool]],
    poll_s: float = POLL_S,
) -> AsyncIterator[str]:
    """``history`` messages (new events + every state's progress) until the execution ends, then
    ``end``. The first message is a snapshot: the events after ``last_event_id`` and all states.
    Every AWS call runs in a worker thread, so no stream holds up the event loop."""
    progress = ExecutionProgress()
    events = await to_thread.run_sync(fetch_history, sfn, execution_arn)
    progress.feed(events)
    cursor = HistoryCursor(sfn, execution_arn)
    cursor.last_id = max((e["id"] for e in events), default=0)
    missed = [event_json(e) for e in events if e["id"] > last_event_id]
    yield sse(
        {"events": missed, "progress": progress_json(progress), "snapshot": True},
        event="history",
        id=cursor.last_id,
    )
    idle = 0.0
    while progress.status == "RUNNING":
        await anyio.sleep(poll_s)
        if await is_disconnected():
            return
        fresh = await to_thread.run_sync(cursor.new_events)
        if fresh:
            idle = 0.0
            progress.feed(fresh)
            yield sse(
                {"events": [event_json(e) for e in fresh], "progress": progress_json(progress)},
                event="history",
                id=cursor.last_id,
            )
        else:
            idle += poll_s
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
    yield sse({"status": progress.status}, event="end", id=cursor.last_id)
