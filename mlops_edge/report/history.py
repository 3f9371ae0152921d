"""Turns a Step Functions execution history into per-state progress.

The history is the one source both AWS and the local interpreter share, so the live view and the
run report read only it (plus the state outputs it carries) and never a backend's internals.

Where a failure arose: a failed execution usually ends in a Fail state reached through other
states (a Catch into ``Rollback``, or a Pass that names the error). The state named is the one
where the error arose: the Task whose failure was caught (its last attempt failed and the state
was left anyway); for an error the state machine detects itself (a Pass that puts ``{"Error",
"Cause"}`` in ``$.error``, the document's convention), the Choice that sent the execution down
that path (``TrainingDone?`` for ``TrainingFailed``, through ``DescribeTrainingFailure``;
``QualityGate`` for ``ModelRejected``), or a caught Task on the way. A Fail state reached with
none of these is named the same way from the Fail state back, or is named itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_TERMINAL_EXECUTION = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}
_FAILURE_DETAIL_KEYS = (
    "lambdaFunctionFailedEventDetails",
    "lambdaFunctionTimedOutEventDetails",
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "executionFailedEventDetails",
)
_ATTEMPT_SUCCEEDED = ("LambdaFunctionSucceeded", "TaskSucceeded")


@dataclass
class StateProgress:
    """What happened in one named state, over every visit (poll loops visit a state many times)."""

    name: str
    kind: str
    visits: int = 0
    retries: int = 0
    failures: int = 0
    status: str = "running"
    total_s: float = 0.0
    entered_at: datetime | None = None
    first_entered_at: datetime | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    _attempts_in_visit: int = field(default=0, repr=False)
    _last_attempt_failed: bool = field(default=False, repr=False)
    _entered_input: str | None = field(default=None, repr=False)
    _came_from: str | None = field(default=None, repr=False)
    _caught: bool = field(default=False, repr=False)  # its last visit ended in a caught failure

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class ExecutionProgress:
    """Everything the history has said so far, folded into per-state progress."""

    states: dict[str, StateProgress] = field(default_factory=dict)
    status: str = "RUNNING"
    error: str | None = None
    cause: str | None = None
    failed_state: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    output: Any = None
    last_output: Any = None
    _seen: set[int] = field(default_factory=set, repr=False)
    _current: str | None = field(default=None, repr=False)
    #: the state that last caught a failure or named an error; see the module's docstring
    _origin: str | None = field(default=None, repr=False)

    def feed(self, events: Iterable[Mapping[str, Any]]) -> list[StateProgress]:
        """Fold new events in (already seen ids are skipped); returns the states that changed."""
        changed: dict[str, StateProgress] = {}
        for event in sorted(events, key=lambda e: e["id"]):
            if event["id"] in self._seen:
                continue
            self._seen.add(event["id"])
            state = self._apply(event)
            if state is not None:
                changed[state.name] = state
        return list(changed.values())

    def timings(self) -> dict[str, float]:
        """Seconds spent in each state, summed over its visits."""
        return {name: round(s.total_s, 3) for name, s in self.states.items()}

    def output_of(self, state_name: str) -> Any:
        state = self.states.get(state_name)
        return None if state is None else state.output

    def _apply(self, event: Mapping[str, Any]) -> StateProgress | None:
        kind: str = event["type"]
        ts: datetime = event["timestamp"]
        if kind == "ExecutionStarted":
            self.started_at = ts
            return None
        if kind in _TERMINAL_EXECUTION:
            self.status = _TERMINAL_EXECUTION[kind]
            self.ended_at = ts
            details = event.get("executionFailedEventDetails") or event.get("executionSucceededEventDetails")
            if kind == "ExecutionSucceeded" and details:
                self.output = _loads(details.get("output"))
            elif details:
                self.error, self.cause = details.get("error"), details.get("cause")
            if kind != "ExecutionSucceeded" and self.failed_state is None:
                # no Fail state: an uncaught error, a timeout or an abort, in the state running
                current = self.states.get(self._current) if self._current else None
                if current is not None and current.status == "failed":
                    self.failed_state = current.name
                else:
                    self.failed_state = self._where_it_arose(None) or self._current
            return None
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            name = details["name"]
            state = self.states.get(name)
            if state is None:
                state = self.states[name] = StateProgress(name=name, kind=kind[: -len("StateEntered")])
                state.first_entered_at = ts
            state.visits += 1
            state.status = "running"
            state.entered_at = ts
            state._attempts_in_visit = 0
            state._last_attempt_failed = False
            state._entered_input = details.get("input")
            state._came_from = self._current
            state._caught = False
            self._current = name
            if state.kind == "Fail":
                self.failed_state = self.failed_state or self._where_it_arose(state)
            return state
        if kind.endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            state = self.states.get(details["name"])
            if state is None:
                return None
            if state.entered_at is not None:
                state.total_s += (ts - state.entered_at).total_seconds()
            state.output = _loads(details.get("output"))
            if isinstance(state.output, dict):
                self.last_output = state.output
            state._caught = state._last_attempt_failed
            if state._caught or self._names_a_new_error(state):
                self._origin = state.name
            if state.status == "running":
                state.status = "succeeded"
            return state
        if kind in ("LambdaFunctionScheduled", "TaskScheduled") and self._current:
            state = self.states[self._current]
            state._attempts_in_visit += 1
            if state._attempts_in_visit > 1:
                state.retries += 1
                state.status = "running"
            return state
        if kind in _ATTEMPT_SUCCEEDED and self._current:
            self.states[self._current]._last_attempt_failed = False
            return None
        for key in _FAILURE_DETAIL_KEYS:
            if key in event and self._current and key != "executionFailedEventDetails":
                state = self.states[self._current]
                state.failures += 1
                state.error = event[key].get("error")
                state.cause = event[key].get("cause")
                state.status = "failed"
                state._last_attempt_failed = True
                return state
        return None

    def _names_a_new_error(self, state: StateProgress) -> bool:
        """Did this state put an error in ``$.error`` (a Catch's ResultPath, or a Pass naming one)?"""
        output = state.output
        if not isinstance(output, dict) or not isinstance(output.get("error"), dict):
            return False
        if "Error" not in output["error"]:
            return False
        before = _loads(state._entered_input)
        return not (isinstance(before, dict) and before.get("error") == output["error"])

    def _where_it_arose(self, fail: StateProgress | None) -> str | None:
        """The state to name for a failure that ends in ``fail`` (None: no Fail state was entered)."""
        if self._origin is not None:
            origin = self.states[self._origin]
            return origin.name if origin._caught else self._decided_by(origin) or origin.name
        if fail is None:
            return None
        return self._decided_by(fail) or fail.name

    def _decided_by(self, state: StateProgress, steps: int = 8) -> str | None:
        """Walking back from ``state``: the first Choice, or Task whose failure was caught."""
        for _ in range(steps):
            before = self.states.get(state._came_from) if state._came_from else None
            if before is None:
                return None
            if before.kind == "Choice" or before._caught:
                return before.name
            state = before
        return None

    def failing_state(self) -> StateProgress | None:
        """The state where the failure arose (the one a person should look at first).

        Once the execution failed, the state :attr:`failed_state` names; while it runs, the last
        state whose latest attempt failed (a retry may still rescue it).
        """
        if self.failed_state is not None:
            return self.states.get(self.failed_state)
        failed = [s for s in self.states.values() if s.status == "failed"]
        return failed[-1] if failed else None


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


class HistoryCursor:
    """Reads only the events added since the last call, so following an execution costs one
    ``GetExecutionHistory`` call per poll however long the history grows (re-reading all of it,
    page by page, every quarter second is what throttles on AWS).

    Pages come newest first (``reverseOrder``) and reading stops at the first event already seen;
    event ids grow by one per event, so nothing in between can be missed.
    """

    def __init__(self, sfn: Any, execution_arn: str, *, page_size: int = 100) -> None:
        self.sfn = sfn
        self.execution_arn = execution_arn
        self.page_size = page_size
        self.last_id = 0
        self.calls = 0

    def new_events(self) -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "executionArn": self.execution_arn,
            "maxResults": self.page_size,
            "reverseOrder": True,
        }
        while True:
            self.calls += 1
            page = self.sfn.get_execution_history(**kwargs)
            older = [e for e in page["events"] if e["id"] > self.last_id]
            fresh.extend(older)
            token = page.get("nextToken")
            if not token or len(older) < len(page["events"]):
                break
            kwargs["nextToken"] = token
        fresh.sort(key=lambda e: e["id"])
        if fresh:
            self.last_id = fresh[-1]["id"]
        return fresh


def fetch_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """All events of an execution, following pagination."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events
        kwargs["nextToken"] = token
