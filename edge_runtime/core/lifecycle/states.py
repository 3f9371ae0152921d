"""Component lifecycle states and the transitions allowed between them (nucleus Lifecycle.java).

Every state change goes through :func:`check_transition`; a transition not in the table is a bug
in the core, so it raises instead of silently corrupting what the deployment waits on.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Greengrass component states, as reported to the cloud."""

    NEW = "NEW"
    INSTALLED = "INSTALLED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    ERRORED = "ERRORED"
    BROKEN = "BROKEN"
    FINISHED = "FINISHED"

    @property
    def is_healthy_end(self) -> bool:
        """A deployment waits for every component to be RUNNING or FINISHED."""
        return self in (State.RUNNING, State.FINISHED)


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.NEW: frozenset({S.INSTALLED, S.ERRORED, S.STOPPING}),
    S.INSTALLED: frozenset({S.STARTING, S.FINISHED, S.ERRORED, S.STOPPING, S.NEW}),
    S.STARTING: frozenset({S.RUNNING, S.FINISHED, S.ERRORED, S.STOPPING}),
    S.RUNNING: frozenset({S.FINISHED, S.ERRORED, S.STOPPING}),
    S.FINISHED: frozenset({S.STARTING, S.STOPPING, S.ERRORED, S.NEW}),
    S.STOPPING: frozenset({S.INSTALLED, S.NEW, S.FINISHED, S.ERRORED}),
    S.ERRORED: frozenset({S.NEW, S.INSTALLED, S.STARTING, S.BROKEN, S.STOPPING}),
    S.BROKEN: frozenset({S.NEW, S.STOPPING}),
}

#: Errors (within the error window) after which a component is BROKEN and no longer retried.
MAX_ERRORS = 3


class IllegalTransition(RuntimeError):
    """A state change the table does not allow."""


def check_transition(current: State, new: State) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> new`` is in :data:`TRANSITIONS`."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current.value} -> {new.value} is not an allowed lifecycle transition")
