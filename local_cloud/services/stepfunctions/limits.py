"""Step Functions' payload quota inside moto's ASL interpreter, as AWS applies it (moto==5.2.5).

AWS (Step Functions developer guide):
- service quotas: "Maximum input or output size for a task, state, or execution: 256 KiB of data
  as a UTF-8 encoded string" (262,144 bytes; the API reference gives the same "Maximum length of
  262144" for every input/output field, "expressed as bytes in UTF-8 encoding");
- error handling, ``States.DataLimitExceeded``: reported when the output of a connector is larger
  than the payload size quota, when the output of a state is larger, or when, after
  ``Parameters`` processing, the input of a state is larger; "a terminal error that can't be caught
  by the ``States.ALL`` error type".

moto 5.2.5 already checks a task's raw result (``StateTaskLambda``/``StateTaskService``: the cause
names the resource, ``'lambda'`` or the function ARN, as AWS's messages do) and every state's
output after ``OutputPath`` (outside Retry/Catch, so it fails the execution). Patched here:

1. the measure: moto counts ``json.dumps`` with ``", "``/``": "`` separators and ``\\uXXXX``
   escapes and refuses ``>= 262144``; AWS counts the UTF-8 bytes of the (compact) JSON and
   allows 262,144 → :func:`payload_size` and :func:`within_quota` replace moto's quota function
   in every module that imported it;
2. a Task state's output check used the task's own cause (the resource); AWS names the state
   (``The state/task 'ProcessAllItems' returned a result ...`` for a Map state) → the state-level
   check runs with the state's name right after output processing;
3. ``States.ALL`` (Retry and Catch) matched ``States.DataLimitExceeded``; it no longer does, as the
   guide says. An explicit ``"States.DataLimitExceeded"`` still matches (the guide forbids only the
   wildcard). ``States.TaskFailed`` never matched it in moto and still does not;
4. the input after ``Parameters`` (``Arguments`` in JSONata) was not checked → checked where
   ``Parargs`` is evaluated; the cause reuses AWS's wording with the state's name (the text AWS
   uses for this case was not found in any public source).

:func:`apply` is called once at endpoint start-up (``StepFunctionsProvider``). It refuses to patch
another moto version, or moto internals whose source no longer contains what the patches rely
on (``verify``); tests/integration/local_cloud/test_limits_moto_pin.py runs the same check.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any

MOTO_VERSION = "5.2.5"
MAX_PAYLOAD_BYTES = 256 * 1024  # 262,144
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"

_PARSER = "moto.stepfunctions.parser"
_STATE = f"{_PARSER}.asl.component.state.state"
_EXEC_STATE = f"{_PARSER}.asl.component.state.exec.execute_state"
_TASK_LAMBDA = f"{_PARSER}.asl.component.state.exec.state_task.state_task_lambda"
_TASK_SERVICE = f"{_PARSER}.asl.component.state.exec.state_task.service.state_task_service"
_ERROR_EQUALS = f"{_PARSER}.asl.component.common.error_name.error_equals_decl"
_PARARGS = f"{_PARSER}.asl.component.common.parargs"
_QUOTAS = f"{_PARSER}.quotas"

#: (module, "Class.method") -> fragments its source must contain for the patches to be right.
FINGERPRINTS: dict[tuple[str, str], tuple[str, ...]] = {
    # the state-level output check, after output processing and outside Retry/Catch
    (_STATE, "CommonStateField._eval_body"): (
        "self._eval_state(env)",
        "self._eval_state_output(env=env)",
        "self._verify_size_quota(env=env, value=env.states.get_input())",
    ),
    (_STATE, "CommonStateField._verify_size_quota"): (
        "is_within_size_quota(value)",
        "StatesStatesDataLimitExceeded",
    ),
    # Retry/Catch wrap the execution (Parameters, task, ResultSelector, ResultPath), not the output
    (_EXEC_STATE, "ExecutionState._eval_state"): (
        "self._evaluate_with_timeout(env)",
        "self._handle_retry(",
        "self._handle_catch(",
    ),
    (_EXEC_STATE, "ExecutionState._eval_state_output"): ("super()._eval_state_output(env=env)",),
    (_TASK_LAMBDA, "StateTaskLambda._eval_execution"): ("self._verify_size_quota(env=env, value=output)",),
    (_TASK_SERVICE, "StateTaskService._after_eval_execution"): (
        "self._verify_size_quota(env=env, value=output)",
    ),
    # ErrorEquals pops the ErrorName and pushes a bool
    (_ERROR_EQUALS, "ErrorEqualsDecl._eval_body"): (
        "error_name: ErrorName = env.stack.pop()",
        "_STATE_ALL_ERROR in self.error_names",
        "env.stack.append(res)",
    ),
    (_PARARGS, "Parargs._eval_body"): ("self.template_eval_component.eval(env=env)",),
}
#: modules that imported moto's quota function by name (each holds its own reference)
QUOTA_USERS = (_QUOTAS, _STATE, _TASK_LAMBDA, _TASK_SERVICE)

_lock = threading.Lock()
_applied = False


class MotoInternalsChanged(RuntimeError):
    """moto is not the version these patches were written against, or its code moved."""


def payload_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON in UTF-8: what AWS measures against 262,144."""
    from moto.stepfunctions.parser.asl.utils.encoding import _DateTimeEncoder

    text = json.dumps(value, cls=_DateTimeEncoder, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


def within_quota(value: Any) -> bool:
    return payload_size(value) <= MAX_PAYLOAD_BYTES


def result_cause(name: str) -> str:
    """AWS's cause for States.DataLimitExceeded (executions' history, public issue reports)."""
    return f"The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."


def resolve(module: str, qualname: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def pin_problems(patch: str, what: str, fingerprints: dict[tuple[str, str], tuple[str, ...]]) -> list[str]:
    """What moved in moto since ``patch`` (a file that patches it) was written: raises
    :class:`MotoInternalsChanged` for another moto version, returns each missing fingerprint.
    Shared by every module here that patches moto (this one, ``waits.py``)."""
    installed = metadata.version("moto")
    if installed != MOTO_VERSION:
        raise MotoInternalsChanged(
            f"{patch} patches moto=={MOTO_VERSION}, found {installed}: re-read {what} and update the patch"
        )
    problems = []
    for (module, qualname), fragments in fingerprints.items():
        try:
            source = inspect.getsource(resolve(module, qualname))
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            problems.append(f"{module}:{qualname} not found ({exc})")
            continue
        problems += [f"{module}:{qualname} no longer contains {f!r}" for f in fragments if f not in source]
    return problems


def verify() -> None:
    """Raise :class:`MotoInternalsChanged` unless moto is 5.2.5 and every patched spot is as read."""
    problems = pin_problems(
        "local_cloud/services/stepfunctions/limits.py", "the ASL interpreter", FINGERPRINTS
    )
    for module in QUOTA_USERS:
        try:
            resolve(module, "is_within_size_quota")
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module}.is_within_size_quota not found ({exc})")
    if problems:
        raise MotoInternalsChanged("moto's ASL interpreter moved:\n  " + "\n  ".join(problems))


def apply() -> None:
    """Patch moto's interpreter once per process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        verify()
        _patch_quota()
        _patch_state_output()
        _patch_error_equals()
        _patch_parargs()
        _applied = True


def _patch_quota() -> None:
    import importlib

    for module in QUOTA_USERS:
        importlib.import_module(module).is_within_size_quota = within_quota


def _patch_state_output() -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original: Callable[..., None] = CommonStateField._eval_state_output
    base_check: Callable[..., None] = CommonStateField._verify_size_quota

    def _eval_state_output(self: Any, env: Any) -> None:
        original(self, env)
        # the base check names the state; StateTask* override _verify_size_quota for their raw
        # result, and moto's own call at the end of _eval_body would otherwise use theirs
        base_check(self, env=env, value=env.states.get_input())

    CommonStateField._eval_state_output = _eval_state_output  # type: ignore[method-assign]


def _patch_error_equals() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )

    original: Callable[..., None] = ErrorEqualsDecl._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if getattr(error_name, "error_name", None) != DATA_LIMIT_EXCEEDED:
            original(self, env)
            return
        env.stack.pop()
        # terminal: only an explicit "States.DataLimitExceeded" matches, never States.ALL
        env.stack.append(any(name.error_name == DATA_LIMIT_EXCEEDED for name in self.error_names))

    ErrorEqualsDecl._eval_body = _eval_body  # type: ignore[method-assign]


def _patch_parargs() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.common.parargs import Parargs
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original: Callable[..., None] = Parargs._eval_body

    def _eval_body(self: Any, env: Any) -> None:
        original(self, env)
        if within_quota(env.stack[-1]):
            return
        state = env.states.context_object.context_object_data.get("State") or {}
        name = state.get("Name") or env.next_state_name or "?"
        error = StatesErrorNameType.StatesStatesDataLimitExceeded
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error.to_name(), cause=result_cause(name)
                    )
                ),
            )
        )

    Parargs._eval_body = _eval_body  # type: ignore[method-assign]
