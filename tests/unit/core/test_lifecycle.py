"""Lifecycle: the transition table and the supervisor running real shell steps."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from edge_runtime.core.lifecycle import (
    MAX_ERRORS,
    TRANSITIONS,
    ComponentService,
    IllegalTransition,
    State,
    check_transition,
    parse_lifecycle,
)
from edge_runtime.core.lifecycle.steps import FAULT_FAIL_INSTALL_ENV, install_fault


def test_table_covers_every_state_and_allows_the_happy_path() -> None:
    assert set(TRANSITIONS) == set(State)
    path = [State.NEW, State.INSTALLED, State.STARTING, State.RUNNING, State.STOPPING, State.INSTALLED]
    for a, b in itertools.pairwise(path):
        check_transition(a, b)
    check_transition(State.ERRORED, State.BROKEN)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (State.NEW, State.RUNNING),
        (State.BROKEN, State.RUNNING),
        (State.FINISHED, State.BROKEN),
        (State.NEW, State.BROKEN),
    ],
)
def test_illegal_transitions_raise(a: State, b: State) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(a, b)


def test_parse_lifecycle_is_case_insensitive() -> None:
    setenv, steps = parse_lifecycle(
        {"Setenv": {"A": 1, "B": True}, "Install": {"Script": "true", "Timeout": 5}, "run": "echo hi"}
    )
    assert setenv == {"A": "1", "B": "true"}
    assert steps["install"].timeout == 5 and steps["run"].script == "echo hi" and steps["run"].timeout is None


def _service(tmp_path: Path, lifecycle: dict, seen: list[State] | None = None) -> ComponentService:
    setenv, steps = parse_lifecycle(lifecycle)
    return ComponentService(
        "comp",
        "1.0.0",
        steps=steps,
        setenv=setenv,
        env={"PATH": os.environ["PATH"], "BASE": "b"},
        work_dir=tmp_path / "work",
        log_path=tmp_path / "comp.log",
        on_state=(lambda _n, s: seen.append(s)) if seen is not None else None,
    )


def test_run_component_reaches_running_then_stops_with_shutdown(tmp_path: Path) -> None:
    seen: list[State] = []
    svc = _service(
        tmp_path,
        {
            "Setenv": {"GREETING": "hello"},
            "Install": "echo $GREETING $BASE > installed.txt",
            "Run": "exec sleep 30",
            "Shutdown": "echo bye > shutdown.txt",
        },
        seen,
    )
    svc.start()
    assert svc.wait_settled(10) == State.RUNNING
    assert (tmp_path / "work" / "installed.txt").read_text().strip() == "hello b"
    svc.stop()
    assert (tmp_path / "work" / "shutdown.txt").exists()
    assert seen == [State.INSTALLED, State.STARTING, State.RUNNING, State.STOPPING, State.INSTALLED]
    assert "run: exec sleep 30" in (tmp_path / "comp.log").read_text()


def test_no_run_means_finished(tmp_path: Path) -> None:
    svc = _service(tmp_path, {})
    svc.start()
    assert svc.wait_settled(5) == State.FINISHED
    svc.stop()


def test_crashing_run_ends_broken_after_max_errors(tmp_path: Path) -> None:
    seen: list[State] = []
    svc = _service(tmp_path, {"Run": "exit 3"}, seen)
    svc.start()
    assert svc.wait_settled(10, stable_s=1.0) == State.BROKEN
    assert svc.errors == MAX_ERRORS and seen.count(State.ERRORED) == MAX_ERRORS
    assert "code 3" in svc.status_reason
    svc.stop()


def test_install_timeout_is_an_error(tmp_path: Path) -> None:
    svc = _service(tmp_path, {"Install": {"Script": "sleep 5", "Timeout": 0.2}, "Run": "sleep 5"})
    svc.start()
    assert svc.wait_settled(15) == State.BROKEN
    assert "timed out" in svc.status_reason
    svc.stop()


def test_fault_switch_fails_the_named_components_install_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_FAIL_INSTALL_ENV, "other, comp")
    svc = _service(tmp_path, {"Install": "echo ran > installed.txt", "Run": "sleep 5"})
    svc.start()
    assert svc.wait_settled(10) == State.BROKEN
    assert FAULT_FAIL_INSTALL_ENV in svc.status_reason and "install failed" in svc.status_reason
    assert not (tmp_path / "work" / "installed.txt").exists()
    assert "not run, fault injected" in (tmp_path / "comp.log").read_text()
    svc.stop()


@pytest.mark.parametrize(("value", "fails"), [("*", True), ("comp", True), ("", False), ("compX,x", False)])
def test_fault_switch_names_components_or_every_one(value: str, fails: bool) -> None:
    reason = install_fault("comp", {FAULT_FAIL_INSTALL_ENV: value})
    assert (reason is not None) is fails


def test_the_fleet_launcher_names_the_cores_switch() -> None:
    from mlops_edge.environment import fleet

    assert fleet.FAULT_FAIL_INSTALL_ENV == FAULT_FAIL_INSTALL_ENV
    assert (
        fleet.fault_env("d1", {"d1"}) == {FAULT_FAIL_INSTALL_ENV: "*"} and fleet.fault_env("d2", {"d1"}) == {}
    )
