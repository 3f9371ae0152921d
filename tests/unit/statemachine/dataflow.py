"""The ASL's data flow, applied to a state document in-process: a test helper, not an interpreter.

It walks the pipeline's own ASL (``plain_asl``) state by state and moves the document exactly as
Step Functions does: ``InputPath`` → ``Parameters`` (paths, ``$$`` context, the intrinsics the
pipeline uses) → the task → ``ResultSelector`` → ``ResultPath`` (into the state's raw input) →
``OutputPath``; a Catch puts ``{"Error", "Cause"}`` at its ``ResultPath``; Choice rules, Wait (not
waited), Pass, Fail (``ErrorPath``/``CausePath``) and Succeed. Lambda tasks call a handler with the
payload and wrap its result as ``lambda:invoke`` does (``{"Payload": ..., "StatusCode": 200, ...}``);
a handler's exception becomes the Lambda error document (``errorMessage``, ``errorType``,
``stackTrace``) in the Catch's ``Cause``, as on AWS. Retries are not simulated.

Every step is recorded with the sizes Step Functions limits: the state's input and output, the
task's parameters (the Lambda request payload) and its raw result, each measured as the UTF-8
bytes of the JSON text. Anything the pipeline's ASL uses that this helper does not know raises,
so a new construct cannot pass unmeasured.
"""

from __future__ import annotations

import copy
import json
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Step Functions' quota for a state's input, output and a task's result (256 KiB).
STATE_LIMIT_BYTES = 262_144
#: Lambda's synchronous invocation payload quota, request and response (6 MB).
LAMBDA_PAYLOAD_LIMIT_BYTES = 6_291_456

Handler = Callable[[Any], Any]


def size(value: Any) -> int:
    """Bytes of ``value`` as Step Functions counts them: the UTF-8 of its JSON text."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class StatesError(Exception):
    """A ``States.*`` runtime error (a path that does not resolve, a result over the limit)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


# --- paths ------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]")


def _segments(path: str) -> list[str | int]:
    rest = path[1:]
    out: list[str | int] = []
    pos = 0
    while pos < len(rest):
        match = _SEGMENT.match(rest, pos)
        if not match:
            raise ValueError(f"JSONPath not supported by this helper: {path!r}")
        out.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    return out


def get_path(doc: Any, path: str, context: Mapping[str, Any] | None = None) -> Any:
    """``$``, ``$.a.b``, ``$.a[0]`` on ``doc``; ``$$.…`` on the context object."""
    root: Any = doc
    if path.startswith("$$"):
        root, path = context or {}, path[1:]
    if not path.startswith("$"):
        raise ValueError(f"not a path: {path!r}")
    value = root
    for segment in _segments(path):
        try:
            value = value[segment]
        except (KeyError, IndexError, TypeError):
            raise StatesError("States.Runtime", f"path {path!r} does not resolve") from None
    return value


def set_path(doc: Any, path: str | None, value: Any) -> Any:
    """``ResultPath``: ``$`` replaces, ``None`` (JSON null) discards, ``$.a.b`` sets (creating maps)."""
    if path is None:
        return doc
    if path == "$":
        return value
    doc = copy.deepcopy(doc)
    target = doc
    segments = _segments(path)
    for segment in segments[:-1]:
        if isinstance(segment, int):
            target = target[segment]
            continue
        target = target.setdefault(segment, {})
    target[segments[-1]] = value
    return doc


# --- intrinsics ------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:'((?:\\.|[^'\\])*)'|(\$\$?[A-Za-z0-9_.\-\[\]]*)|(-?\d+(?:\.\d+)?))\s*(,|$)")


def _intrinsic(expression: str, doc: Any, context: Mapping[str, Any]) -> Any:
    name, _, rest = expression.partition("(")
    if not rest.endswith(")"):
        raise ValueError(f"intrinsic not supported: {expression!r}")
    args: list[Any] = []
    body, pos = rest[:-1], 0
    while pos < len(body):
        match = _TOKEN.match(body, pos)
        if not match:
            raise ValueError(f"intrinsic arguments not supported: {expression!r}")
        text, path, number = match.group(1), match.group(2), match.group(3)
        if text is not None:
            args.append(re.sub(r"\\(.)", r"\1", text))
        elif path is not None:
            args.append(get_path(doc, path, context))
        else:
            args.append(float(number) if "." in number else int(number))
        pos = match.end()
    if name == "States.MathAdd":
        return args[0] + args[1]
    if name == "States.Format":
        template, values = args[0], iter(args[1:])
        return re.sub(r"\{\}", lambda _: _format_value(next(values)), template)
    raise ValueError(f"intrinsic not supported by this helper: {name}")


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def evaluate(template: Any, doc: Any, context: Mapping[str, Any]) -> Any:
    """A ``Parameters``/``ResultSelector`` template: keys ending ``.$`` take a path or intrinsic."""
    if isinstance(template, list):
        return [evaluate(v, doc, context) for v in template]
    if not isinstance(template, dict):
        return template
    out: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            out[key[:-2]] = (
                _intrinsic(value, doc, context)
                if value.startswith("States.")
                else get_path(doc, value, context)
            )
        else:
            out[key] = evaluate(value, doc, context)
    return out


# --- choice rules ----------------------------------------------------------------------------


def _rule(rule: Mapping[str, Any], doc: Any) -> bool:
    if "And" in rule:
        return all(_rule(r, doc) for r in rule["And"])
    if "Or" in rule:
        return any(_rule(r, doc) for r in rule["Or"])
    if "Not" in rule:
        return not _rule(rule["Not"], doc)
    variable = rule["Variable"]
    operators = {k: v for k, v in rule.items() if k not in ("Variable", "Next")}
    (operator, operand), *more = operators.items()
    if more:
        raise ValueError(f"choice rule with several operators: {rule}")
    if operator == "IsPresent":
        try:
            get_path(doc, variable)
            present = True
        except StatesError:
            present = False
        return present == operand
    value = get_path(doc, variable)
    if operator.endswith("Path"):
        operator, operand = operator[: -len("Path")], get_path(doc, operand)
    if operator == "IsNull":
        return (value is None) == operand
    if operator in ("StringEquals", "BooleanEquals", "NumericEquals"):
        return value == operand
    if operator == "NumericGreaterThanEquals":
        return value >= operand
    if operator == "NumericGreaterThan":
        return value > operand
    if operator == "NumericLessThan":
        return value < operand
    raise ValueError(f"choice operator not supported by this helper: {operator}")


# --- the walk --------------------------------------------------------------------------------


@dataclass
class Step:
    """One state's visit and the sizes Step Functions checks."""

    state: str
    type: str
    input_bytes: int
    output_bytes: int = 0
    parameters_bytes: int | None = None
    result_bytes: int | None = None
    caught: str | None = None


@dataclass
class Run:
    """The walk of one execution: its steps, and how it ended."""

    steps: list[Step] = field(default_factory=list)
    status: str = "RUNNING"
    output: Any = None
    error: str | None = None
    cause: str | None = None

    @property
    def path(self) -> list[str]:
        return [s.state for s in self.steps]

    def largest(self) -> Step:
        return max(self.steps, key=lambda s: max(s.input_bytes, s.output_bytes, s.result_bytes or 0))


def lambda_error_cause(exc: BaseException) -> str:
    """The ``Cause`` a Catch receives for a Lambda function error: the error document as JSON."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": str(uuid.uuid4()),
            "stackTrace": [line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)],
        }
    )


def _catch(state: Mapping[str, Any], error: str) -> Mapping[str, Any] | None:
    for catcher in state.get("Catch", []):
        if error in catcher["ErrorEquals"] or "States.ALL" in catcher["ErrorEquals"]:
            return catcher
    return None


def run(
    asl: Mapping[str, Any],
    execution_input: Any,
    *,
    lambdas: Mapping[str, Handler],
    services: Mapping[str, Handler] | None = None,
    execution: str = "exec-1",
    max_steps: int = 500,
) -> Run:
    """Walks ``asl`` from ``StartAt`` with ``execution_input``.

    ``lambdas`` maps a function name (the last part of the ARN after ``mlops-edge-``, or the whole
    ARN) to a handler of the payload; ``services`` maps a non-Lambda task ``Resource`` to a
    handler of its parameters.
    """
    services = services or {}
    context = {
        "Execution": {
            "Id": f"arn:aws:states:us-east-1:123456789012:execution:pipeline:{execution}",
            "Name": execution,
            "Input": execution_input,
        }
    }
    result = Run()
    doc: Any = execution_input
    name = asl["StartAt"]
    for _ in range(max_steps):
        state = asl["States"][name]
        step = Step(state=name, type=state["Type"], input_bytes=size(doc))
        result.steps.append(step)
        if step.input_bytes > STATE_LIMIT_BYTES:
            raise StatesError("States.DataLimitExceeded", f"input of {name}: {step.input_bytes} bytes")
        kind = state["Type"]
        if kind == "Fail":
            result.status = "FAILED"
            result.error = get_path(doc, state["ErrorPath"]) if "ErrorPath" in state else state.get("Error")
            cause_path = state.get("CausePath")
            if cause_path is None:
                result.cause = state.get("Cause")
            elif cause_path.startswith("States."):
                result.cause = _intrinsic(cause_path, doc, context)
            else:
                result.cause = get_path(doc, cause_path)
            step.output_bytes = step.input_bytes
            return result
        if kind == "Succeed":
            result.status, result.output = "SUCCEEDED", doc
            step.output_bytes = step.input_bytes
            return result
        effective = get_path(doc, state.get("InputPath", "$"))
        next_name = state.get("Next")
        if kind == "Choice":
            next_name = next(
                (c["Next"] for c in state["Choices"] if _rule(c, effective)), state.get("Default")
            )
            if next_name is None:
                raise StatesError("States.NoChoiceMatched", name)
            out = effective
        elif kind == "Wait":
            out = effective
        elif kind == "Pass":
            value = (
                evaluate(state["Parameters"], effective, context)
                if "Parameters" in state
                else (state.get("Result", effective))
            )
            out = set_path(doc, state.get("ResultPath", "$"), value)
        elif kind == "Task":
            parameters = evaluate(state.get("Parameters", effective), effective, context)
            step.parameters_bytes = size(parameters)
            if step.parameters_bytes > STATE_LIMIT_BYTES:
                raise StatesError(
                    "States.DataLimitExceeded", f"parameters of {name}: {step.parameters_bytes} bytes"
                )
            try:
                raw = _task(state, parameters, lambdas, services)
            except StatesError:
                raise
            except Exception as exc:  # the handler's error, as Lambda reports it
                error = type(exc).__name__
                catcher = _catch(state, error)
                if catcher is None:
                    raise
                step.caught = error
                out = set_path(
                    doc,
                    catcher.get("ResultPath", "$"),
                    {"Error": error, "Cause": lambda_error_cause(exc)},
                )
                next_name = catcher["Next"]
            else:
                step.result_bytes = size(raw)
                if step.result_bytes > STATE_LIMIT_BYTES:
                    raise StatesError(
                        "States.DataLimitExceeded", f"result of {name}: {step.result_bytes} bytes"
                    )
                if "ResultSelector" in state:
                    raw = evaluate(state["ResultSelector"], raw, context)
                out = set_path(doc, state.get("ResultPath", "$"), raw)
        else:
            raise ValueError(f"state type not supported by this helper: {kind}")
        if kind != "Task" or step.caught is None:
            out = get_path(out, state.get("OutputPath", "$"))
        step.output_bytes = size(out)
        if step.output_bytes > STATE_LIMIT_BYTES:
            raise StatesError("States.DataLimitExceeded", f"output of {name}: {step.output_bytes} bytes")
        doc = out
        if next_name is None:
            if state.get("End"):
                result.status, result.output = "SUCCEEDED", doc
                return result
            raise ValueError(f"state {name} has no Next")
        name = next_name
    raise AssertionError(f"more than {max_steps} steps: a loop did not end")


def _task(
    state: Mapping[str, Any],
    parameters: Any,
    lambdas: Mapping[str, Handler],
    services: Mapping[str, Handler],
) -> Any:
    resource = state["Resource"]
    if resource.endswith(":lambda:invoke"):
        arn = parameters["FunctionName"]
        function = arn.rsplit(":", 1)[-1].removeprefix("mlops-edge-")
        handler = lambdas.get(function) or lambdas.get(arn)
        if handler is None:
            raise KeyError(f"no handler given for {function}")
        payload = json.loads(json.dumps(parameters["Payload"]))  # what Lambda would receive
        if size(payload) > LAMBDA_PAYLOAD_LIMIT_BYTES:
            raise StatesError("Lambda.RequestTooLargeException", f"{function}: payload {size(payload)} bytes")
        returned = json.loads(json.dumps(handler(payload)))
        if size(returned) > LAMBDA_PAYLOAD_LIMIT_BYTES:
            raise StatesError("Lambda.ResponseTooLarge", f"{function}: response {size(returned)} bytes")
        return {
            "ExecutedVersion": "$LATEST",
            "Payload": returned,
            "SdkHttpMetadata": {"HttpHeaders": {}, "HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": str(uuid.uuid4())},
            "StatusCode": 200,
        }
    if resource not in services:
        raise KeyError(f"no service handler given for {resource}")
    return json.loads(json.dumps(services[resource](parameters)))
