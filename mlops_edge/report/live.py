"""The live view of a running execution: a rich table on a terminal, plain lines elsewhere.

Both renderers take the same `ExecutionProgress`, so what CI logs show and what a person sees on a
terminal never disagree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mlops_edge.report.history import ExecutionProgress, StateProgress

_STYLE = {"running": "yellow", "succeeded": "green", "failed": "red"}
_ICON = {"running": "…", "succeeded": "✔", "failed": "✖"}


class View(Protocol):
    def update(self, progress: ExecutionProgress, changed: list[StateProgress]) -> None: ...
    def devices(self, statuses: Mapping[str, str]) -> None: ...
    def __enter__(self) -> View: ...
    def __exit__(self, *exc: object) -> None: ...


def make_view(console: Console, title: str) -> View:
    """A rich live table when the console is a terminal, plain lines otherwise."""
    return RichView(console, title) if console.is_terminal else PlainView(console)


def _duration(state: StateProgress, now: float) -> float:
    extra = 0.0
    if state.running and state.entered_at is not None:
        extra = max(0.0, now - state.entered_at.timestamp())
    return state.total_s + extra


class PlainView:
    """One line per state start, end, retry and failure; one line per device status change.

    A poll loop (Wait -> Describe -> Choice, many times) would print a line per visit; instead a
    state's "done" line is held until a different working state starts, then printed once with its
    poll count and total time.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._last: dict[str, tuple[str, int, int]] = {}
        self._devices: dict[str, str] = {}
        self._pending: StateProgress | None = None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()

    def _print(self, text: str, **kwargs: object) -> None:
        self._console.print(text, highlight=False, **kwargs)  # type: ignore[arg-type]

    def _flush(self, unless: str | None = None) -> None:
        state, self._pending = self._pending, None
        if state is None or state.name == unless:
            self._pending = state
            return
        loops = f" ({state.visits} polls)" if state.visits > 1 else ""
        self._print(f"✔ {state.name} {state.total_s:.1f}s{loops}")

    def update(self, progress: ExecutionProgress, changed: list[StateProgress]) -> None:
        for state in sorted(changed, key=lambda s: s.entered_at.timestamp() if s.entered_at else 0.0):
            key = (state.status, state.retries, state.visits)
            before = self._last.get(state.name)
            self._last[state.name] = key
            if before == key or state.kind in ("Wait", "Choice", "Pass"):
                continue
            if state.status == "running":
                if before and state.retries > before[1]:
                    self._print(f"↻ {state.name} retry {state.retries}")
                elif state.visits == 1 and (before is None or before[2] != state.visits):
                    self._flush()
                    self._print(f"▶ {state.name}")
                elif state.visits > 1:
                    self._flush(unless=state.name)
                continue
            if state.status == "failed":
                self._flush(unless=state.name)
                self._pending = None
                self._print(f"✖ {state.name}: {state.error}: {_short(state.cause)}", style="red")
                continue
            if state.status == "succeeded":
                self._flush(unless=state.name)
                self._pending = state

    def devices(self, statuses: Mapping[str, str]) -> None:
        for thing, status in sorted(statuses.items()):
            if self._devices.get(thing) != status:
                self._devices[thing] = status
                self._print(f"  device {thing}: {status}")


class RichView:
    """A table of states (status, visits, retries, time) and one of device statuses, redrawn live."""

    def __init__(self, console: Console, title: str) -> None:
        self._title = title
        self._progress: ExecutionProgress | None = None
        self._devices: dict[str, str] = {}
        self._live = Live(console=console, refresh_per_second=8, get_renderable=self._render)

    def __enter__(self) -> RichView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)

    def update(self, progress: ExecutionProgress, changed: list[StateProgress]) -> None:
        self._progress = progress

    def devices(self, statuses: Mapping[str, str]) -> None:
        self._devices = dict(statuses)

    def _render(self) -> Group:
        now = time.time()
        table = Table(title=self._title, title_justify="left", expand=False)
        for column in ("state", "status", "visits", "retries", "time"):
            table.add_column(column, justify="right" if column in ("visits", "retries", "time") else "left")
        if self._progress is not None:
            for state in self._progress.states.values():
                status = Text(f"{_ICON[state.status]} {state.status}", style=_STYLE[state.status])
                table.add_row(
                    state.name,
                    status,
                    str(state.visits),
                    str(state.retries or ""),
                    f"{_duration(state, now):.1f}s",
                )
        parts: list[Table | Text] = [table]
        if self._devices:
            devices = Table(title="devices", title_justify="left")
            devices.add_column("thing")
            devices.add_column("deployment")
            for thing, status in sorted(self._devices.items()):
                style = "green" if status in ("SUCCEEDED", "COMPLETED") else "red" if "FAIL" in status else ""
                devices.add_row(thing, Text(status, style=style))
            parts.append(devices)
        return Group(*parts)


def _short(text: str | None, limit: int = 300) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
