"""``StartExecution`` refused as AWS refuses it; every Step Functions operation then falls to moto.

Only invalid requests are answered here; a valid one goes on to moto unchanged. Checks, in AWS's
order (request constraints of the service model first, then the state machine, then the name and
the input's content):

- ``name`` longer than 80 characters (model: ``Name`` min 1, max 80) and ``input`` over 262,144
  bytes in UTF-8 (model: ``SensitiveData`` max 262144, "expressed as bytes in UTF-8 encoding") →
  400 ``ValidationException`` with the Coral validation message AWS returns
  (``1 validation error detected: Value 'xxx' at 'name' failed to satisfy constraint: Member must
  have length less than or equal to 80``; the sensitive ``input`` value is not echoed);
- an unknown state machine → left to moto (``StateMachineDoesNotExist``);
- a name with whitespace, ``< > { } [ ]``, ``? *``, ``" # % \\ ^ | ~ ` $ & , ; : /`` or a control
  character (U+0000–001F, U+007F–009F) → 400 ``InvalidName`` ``Invalid Name: '<name>'``;
- an input that is not JSON → 400 ``InvalidExecutionInput`` ``Invalid State Machine Execution
  Input: '<parser message>'`` (moto 5.2.5's interpreter backend answers this one without an error
  code).

moto already answers a reused name (``ExecutionAlreadyExists``, or the running execution when
name and input are the same).

The interpreter's patches (``limits``, ``integration_errors``, ``waits``, ``credentials``) import
moto's whole ASL interpreter (with moto's Batch and EC2 models: 1-2 s of a 2-core machine), so
:meth:`StepFunctionsProvider.start` applies them in a thread of their own: the endpoint answers
other services meanwhile, and each Step Functions request (``X-Amz-Target: AWSStepFunctions.*``:
the only way an execution starts, the events provider calls the API too) waits until they are in.
If moto moved under a patch, those requests answer 500 naming what moved.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.stepfunctions import credentials, integration_errors, limits, waits

LOG = logging.getLogger(__name__)

TARGET = "AWSStepFunctions.StartExecution"
TARGET_PREFIX = "AWSStepFunctions."
PATCH_TIMEOUT_S = 120.0  # importing the interpreter on a loaded 2-core machine: seconds, not minutes
MAX_NAME_CHARS = 80
MAX_INPUT_BYTES = limits.MAX_PAYLOAD_BYTES
# the characters the API reference forbids in names (whitespace is checked with str.isspace)
FORBIDDEN_NAME_CHARS = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')
_NS = "com.amazonaws.swf.service.v2.model"
_VALIDATE = "com.amazon.coral.validate#ValidationException"


class StepFunctionsError(Exception):
    def __init__(self, code: str, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.type_ = type_ or f"{_NS}#{code}"


def invalid_name_chars(name: str) -> bool:
    for ch in name:
        point = ord(ch)
        if ch.isspace() or ch in FORBIDDEN_NAME_CHARS or point <= 0x1F or 0x7F <= point <= 0x9F:
            return True
    return False


def validate_constraints(body: dict[str, Any]) -> None:
    """The service model's constraints, checked before anything else (``ValidationException``)."""
    violations = []
    name = body.get("name")
    if isinstance(name, str):
        if len(name) < 1:
            violations.append(
                f"Value '{name}' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1"
            )
        elif len(name) > MAX_NAME_CHARS:
            violations.append(
                f"Value '{name}' at 'name' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_NAME_CHARS}"
            )
    data = body.get("input")
    if isinstance(data, str) and len(data.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        violations.append(
            "Value at 'input' failed to satisfy constraint: "
            f"Member must have size less than or equal to {MAX_INPUT_BYTES} bytes in UTF-8 encoding"
        )
    if violations:
        count = len(violations)
        head = f"{count} validation error{'s' if count > 1 else ''} detected: "
        raise StepFunctionsError("ValidationException", head + "; ".join(violations), _VALIDATE)


def validate_content(body: dict[str, Any]) -> None:
    """Name characters (``InvalidName``) and JSON input (``InvalidExecutionInput``)."""
    name = body.get("name")
    if isinstance(name, str) and invalid_name_chars(name):
        raise StepFunctionsError("InvalidName", f"Invalid Name: '{name}'")
    data = body.get("input")
    if isinstance(data, str):
        try:
            json.loads(data)
        except ValueError as exc:
            raise StepFunctionsError(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'"
            ) from None


class StepFunctionsProvider:
    """Answers invalid ``StartExecution`` requests; patches moto's interpreter once, in a thread
    (:meth:`start`), before any Step Functions request goes on."""

    def __init__(
        self, ctx: ServerContext, state_credentials: Callable[[str, str], Any] | None = None
    ) -> None:
        self.ctx = ctx
        # (role_arn, state_machine_arn) -> the session the state machine's integrations sign with
        self.state_credentials = state_credentials
        self._patched = threading.Event()
        self._patch_error: str | None = None

    def start(self) -> None:
        threading.Thread(target=self.patch, daemon=True, name="stepfunctions-patches").start()

    def patch(self) -> None:
        """Apply every interpreter patch (idempotent); a failure is kept for the requests to name."""
        try:
            limits.apply()
            integration_errors.apply()
            waits.apply()  # Wait states to the millisecond (moto rounded timestamps to whole seconds)
            credentials.apply(self.state_credentials)
        except Exception as exc:
            LOG.exception("patching moto's Step Functions interpreter failed")
            self._patch_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._patched.set()

    def _not_patched(self) -> Response | None:
        """None once the patches are in; else the 500 a Step Functions request gets."""
        if not self._patched.wait(PATCH_TIMEOUT_S):
            message = f"the Step Functions interpreter did not load in {PATCH_TIMEOUT_S:.0f} s"
        elif self._patch_error is not None:
            message = f"the Step Functions interpreter could not be patched: {self._patch_error}"
        else:
            return None
        return Response(
            json.dumps({"__type": f"{_NS}#InternalError", "message": f"local cloud: {message}"}),
            status=500,
            headers={"x-amzn-ErrorType": "InternalError"},
            mimetype="application/x-amz-json-1.0",
        )

    def handle(self, request: Request) -> Response | None:
        target = request.headers.get("X-Amz-Target") or ""
        if not target.startswith(TARGET_PREFIX):
            return None
        refusal = self._not_patched()
        if refusal is not None or target != TARGET:
            return refusal
        try:
            body = json.loads(request.get_data(cache=True) or b"{}")
        except ValueError:
            return None  # moto answers a malformed request as it does today
        if not isinstance(body, dict):
            return None
        try:
            validate_constraints(body)
            if not self._state_machine_exists(str(body.get("stateMachineArn") or "")):
                return None
            validate_content(body)
        except StepFunctionsError as exc:
            return Response(
                json.dumps({"__type": exc.type_, "message": exc.message}),
                status=400,
                headers={"x-amzn-ErrorType": exc.code},
                mimetype="application/x-amz-json-1.0",
            )
        return None

    def _state_machine_exists(self, arn: str) -> bool:
        """True when moto knows the state machine (moto itself answers an unknown one)."""
        from moto.stepfunctions.responses import get_backend

        parts = arn.split(":")
        if len(parts) < 7:
            return False
        try:
            get_backend(parts[4], parts[3]).describe_state_machine(arn)
        except Exception:
            LOG.debug("StartExecution on unknown state machine %s", arn, exc_info=True)
            return False
        return True
