"""Errors of optimized service integrations named as AWS names them (moto==5.2.5).

moto's interpreter runs ``arn:aws:states:::sagemaker:*`` tasks through its "unsupported service"
fallback, which relays the call but turns any service error into ``States.Runtime`` with
botocore's text as the cause: a refused ``CreateTrainingJob`` (IAM) or a bad request would then
fail a state machine no Catch on ``SageMaker.*`` expects, and a Fail state whose ``ErrorPath``
reads it crashes moto ("Custom Error Names MUST NOT begin with the prefix 'States.'").

AWS reports these errors in the Java SDK's shape, which state machines match in Retry/Catch:
``SageMaker.AmazonSageMakerException`` for any error the service does not model (AccessDenied,
ValidationException, throttling), ``SageMaker.<ModelledError>Exception`` for the ones it does
(e.g. ``SageMaker.ResourceLimitExceededException``), and a cause of the form
``<message> (Service: AmazonSageMaker; Status Code: 400; Error Code: AccessDeniedException;
Request ID: <id>; Proxy: null)``. :func:`apply` patches the fallback's error mapping for the
services in :data:`JAVA_NAMES`; every other error keeps moto's behaviour.
"""

from __future__ import annotations

import inspect
import threading
from importlib import metadata
from typing import Any

from local_cloud.services.stepfunctions.limits import MOTO_VERSION, MotoInternalsChanged

#: boto service name -> (the error name's prefix, the Java SDK's client name in causes)
JAVA_NAMES = {"sagemaker": ("SageMaker", "AmazonSageMaker")}
_MODULE = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported"
)
_lock = threading.Lock()
_applied = False


def error_name(service: str, code: str, modelled: bool) -> str:
    """The state machine error AWS reports for a service error ``code``."""
    prefix, java = JAVA_NAMES[service]
    if not modelled:
        return f"{prefix}.{java}Exception"
    return f"{prefix}.{code if code.endswith('Exception') else code + 'Exception'}"


def cause(service: str, message: str, code: str, status: int, request_id: str) -> str:
    _, java = JAVA_NAMES[service]
    return f"{message} (Service: {java}; Status Code: {status}; Error Code: {code}; Request ID: {request_id}; Proxy: null)"


def _modelled(service: str, code: str) -> bool:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return code in {shape for shape in model.shape_names if model.shape_for(shape).metadata.get("exception")}


def _failure_event(task: Any, env: Any, error: str, text: str) -> Any:
    """A TaskFailed event, built as moto builds it for its aws-sdk integrations."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    details = TaskFailedEventDetails(
        resource=task._get_sfn_resource(),
        resourceType=task._get_sfn_resource_type(),
        error=error,
        cause=text,
    )
    return FailureEvent(
        env=env,
        error_name=ErrorName(error_name=error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=details),
    )


def verify() -> None:
    installed = metadata.version("moto")
    if installed != MOTO_VERSION:
        raise MotoInternalsChanged(f"integration_errors.py patches moto=={MOTO_VERSION}, found {installed}")
    import importlib

    module = importlib.import_module(_MODULE)
    source = inspect.getsource(module.StateTaskServiceUnsupported)
    if "_eval_service_task" not in source or "_from_error" in source:
        raise MotoInternalsChanged(
            f"{_MODULE}.StateTaskServiceUnsupported changed: re-read its error handling before patching"
        )


def apply() -> None:
    """Give moto's fallback integration AWS's error names for :data:`JAVA_NAMES` (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        verify()
        import importlib

        from botocore.exceptions import ClientError

        module = importlib.import_module(_MODULE)
        unsupported = module.StateTaskServiceUnsupported
        inherited = unsupported._from_error

        def _from_error(self: Any, env: Any, ex: Exception) -> Any:
            service = self._get_boto_service_name()
            if not isinstance(ex, ClientError) or service not in JAVA_NAMES:
                return inherited(self, env, ex)
            code = str(ex.response.get("Error", {}).get("Code") or "")
            meta = ex.response.get("ResponseMetadata", {})
            name = error_name(service, code, _modelled(service, code))
            text = cause(
                service,
                str(ex.response.get("Error", {}).get("Message") or ""),
                code,
                int(meta.get("HTTPStatusCode") or 400),
                str(meta.get("RequestId") or ""),
            )
            return _failure_event(self, env, name, text)

        unsupported._from_error = _from_error
        _applied = True
