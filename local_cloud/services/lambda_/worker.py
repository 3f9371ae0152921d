"""A warm Lambda worker: imports the handler once, then serves invocations read from stdin.

Run as a plain script (not ``-m``) so nothing from local_cloud is on its path: the function sees
its code directory first, then the environment's installed packages, as on Lambda. Protocol: one
JSON line per request on stdin, one JSON line per response on a private copy of the original
stdout; the handler's own prints and logging are captured per invocation and returned as logs.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # stray writes to fd 1 (C extensions) must not corrupt the protocol


class _Capture(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in that appends to the current invocation's log buffer."""

    def __init__(self) -> None:
        self.buffer_ = io.StringIO()

    def write(self, s: str) -> int:
        return self.buffer_.write(s)

    def flush(self) -> None:
        pass

    def take(self) -> str:
        value = self.buffer_.getvalue()
        self.buffer_ = io.StringIO()
        return value


_capture = _Capture()
sys.stdout = _capture  # type: ignore[assignment]
sys.stderr = _capture  # type: ignore[assignment]
logging.basicConfig(stream=_capture, level=logging.INFO, format="[%(levelname)s]\t%(asctime)s\t%(message)s")


class LambdaContext:
    """The attributes and method of the AWS Lambda Python context object that handlers use."""

    def __init__(self, request_id: str, deadline_ms: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("LOCAL_LAMBDA_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack or []}


def _load_handler() -> tuple[Any, dict[str, Any] | None]:
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # Lambda reports import failures per invocation, not at start
        return None, _error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, _error(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler, None


def main() -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)
    if task_root:
        sys.path.insert(0, task_root)
        os.chdir(task_root)
    handler, init_error = _load_handler()
    init_logs = _capture.take()
    _proto.write(json.dumps({"ready": True}) + "\n")  # init phase over: the invoke timeout starts now
    for line in sys.stdin:
        request = json.loads(line)
        ctx = LambdaContext(request["request_id"], request["deadline_ms"])
        response: dict[str, Any]
        if init_error is not None:
            response = {"error": init_error}
        else:
            try:
                raw = request["payload"]
                event = json.loads(raw) if raw.strip() else {}
                result = handler(event, ctx)
                try:
                    response = {"result": json.dumps(result)}
                except (TypeError, ValueError) as exc:
                    response = {"error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")}
            except Exception as exc:
                tb = traceback.extract_tb(exc.__traceback__)[1:]  # drop this frame, as Lambda does
                response = {"error": _error(type(exc).__name__, str(exc), traceback.format_list(tb))}
                print(f"[ERROR] {type(exc).__name__}: {exc}\n" + "".join(traceback.format_list(tb)))
        response["logs"] = init_logs + _capture.take()
        init_logs = ""
        _proto.write(json.dumps(response) + "\n")
    # stdin closed: the pool is stopping the worker. Exit as a Lambda sandbox is torn down, without
    # the interpreter's finalization: a handler's threads and imported libraries kept workers
    # alive past the pool's 2 s stop deadline, so every stop of the endpoint took 2 s or more.
    _proto.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
