"""The state machine's service integrations sign with its role's session (moto==5.2.5).

On AWS, Step Functions assumes the state machine's role (``states.amazonaws.com``, with the
state machine as ``aws:SourceArn``) and calls Lambda, SageMaker… with that session, so a
missing ``lambda:InvokeFunction`` fails the task with AccessDenied. moto 5.2.5's interpreter
signs every integration call with the fixed keys ``ak``/``sk``
(``asl/utils/boto_client.py: boto_client_for``), although each caller passes the state's
``StateCredentials(role_arn)``. Patched here:

1. ``StateTask._eval_state_credentials`` returns :class:`SourcedCredentials`, moto's
   ``StateCredentials`` plus the state machine's ARN (read from the context object), so the
   trust policy's ``aws:SourceArn`` condition can be evaluated;
2. ``boto_client_for``, in every module that imported it by name (``BOTO_CLIENT_USERS``), signs
   with the session the installed provider returns for ``(role_arn, state_machine_arn)``; with
   no provider, or when it returns None (IAM off, or audit mode finding the role not
   assumable), the client is moto's, unchanged. A provider that raises (enforce mode, a role the
   service may not assume) fails the task with that cause.

The client is otherwise built exactly as moto builds it (endpoint, no parameter validation, no
retries, moto's timeouts). :func:`verify` refuses another moto version, a changed source of the
patched functions, or a module of the interpreter that creates clients and is not in
``BOTO_CLIENT_USERS``; tests/unit/iam/test_moto_hook.py runs it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import field, make_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

MOTO_VERSION = "5.2.5"
_PARSER = "moto.stepfunctions.parser"
_BOTO_CLIENT = f"{_PARSER}.asl.utils.boto_client"
_STATE_TASK = f"{_PARSER}.asl.component.state.exec.state_task.state_task"
_TASK = f"{_PARSER}.asl.component.state.exec.state_task"
_MAP = f"{_PARSER}.asl.component.state.exec.state_map"
#: modules that imported ``boto_client_for`` by name (each holds its own reference)
BOTO_CLIENT_USERS = (
    _BOTO_CLIENT,
    f"{_TASK}.lambda_eval_utils",
    f"{_TASK}.service.state_task_service_unsupported",
    f"{_TASK}.service.state_task_service_aws_sdk",
    f"{_TASK}.service.state_task_service_sfn",
    f"{_TASK}.service.state_task_service_sqs",
    f"{_TASK}.service.state_task_service_sns",
    f"{_TASK}.service.state_task_service_events",
    f"{_TASK}.service.state_task_service_dynamodb",
    f"{_TASK}.service.state_task_service_ecs",
    f"{_TASK}.service.state_task_service_batch",
    f"{_TASK}.service.state_task_service_glue",
    f"{_MAP}.item_reader.eval.resource_eval_s3",
    f"{_MAP}.result_writer.resource_eval.resource_eval_s3",
)
#: (module, qualified name) -> fragments its source must contain for the patches to be right
FINGERPRINTS: dict[tuple[str, str], tuple[str, ...]] = {
    (_BOTO_CLIENT, "boto_client_for"): (
        "def boto_client_for(\n    region: str, service: str, state_credentials: Any = None\n)",
        "intercepting_boto_calls = botocore_stubber.enabled",
        'kwargs["endpoint_url"] = f"http://localhost:{moto_server_port()}"',
        'aws_access_key_id="ak"',
        "parameter_validation=False",
        'retries={"max_attempts": 0, "total_max_attempts": 1}',
        "connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS",
        "read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS",
    ),
    (_STATE_TASK, "StateTask._eval_state_credentials"): (
        "role_arn=env.aws_execution_details.role_arn",
        "self.credentials.eval(env=env)",
        "return state_credentials",
    ),
}

_lock = threading.Lock()
_applied = False
#: (role_arn, state_machine_arn) -> credentials (with ``access_key_id``, ``secret_access_key``,
#: ``session_token``) or None for moto's own keys
Provider = Callable[[str, str], Any]
_provider: Provider | None = None


class MotoInternalsChanged(RuntimeError):
    """moto is not the version this patch was written against, or its code moved."""


def _state_credentials_cls() -> type:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials

    return StateCredentials


def _resolve(module: str, qualname: str) -> Any:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _client_creating_modules() -> set[str]:
    """Modules of moto's interpreter whose source calls ``boto_client_for`` or
    ``boto3.client`` (read as text: nothing is imported)."""
    import moto.stepfunctions.parser as parser

    root = Path(parser.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "boto_client_for(" in text or "boto3.client(" in text:
            relative = path.relative_to(root).with_suffix("")
            found.add(".".join((_PARSER, *relative.parts)))
    return found


def verify() -> None:
    """Raise :class:`MotoInternalsChanged` unless moto is 5.2.5 and every patched spot is as read."""
    installed = metadata.version("moto")
    if installed != MOTO_VERSION:
        raise MotoInternalsChanged(
            f"local_cloud/services/stepfunctions/credentials.py patches moto=={MOTO_VERSION}, found "
            f"{installed}: re-read how the ASL interpreter builds its clients and update the patch"
        )
    problems = []
    for (module, qualname), fragments in FINGERPRINTS.items():
        try:
            source = inspect.getsource(_original(module, qualname))
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            problems.append(f"{module}:{qualname} not found ({exc})")
            continue
        problems += [f"{module}:{qualname} no longer contains {f!r}" for f in fragments if f not in source]
    creating = _client_creating_modules()
    missing = sorted(creating - set(BOTO_CLIENT_USERS))
    gone = sorted(set(BOTO_CLIENT_USERS) - creating)
    if missing:
        problems.append(f"modules create clients but are not patched: {missing}")
    if gone:
        problems.append(f"patched modules no longer create clients: {gone}")
    for module in BOTO_CLIENT_USERS:
        try:
            _resolve(module, "boto_client_for")
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module}.boto_client_for not found ({exc})")
    try:
        fields = {f.name for f in _state_credentials_cls().__dataclass_fields__.values()}
        if fields != {"role_arn"}:
            problems.append(f"StateCredentials fields are {sorted(fields)}, expected ['role_arn']")
    except (ImportError, AttributeError) as exc:
        problems.append(f"StateCredentials not found ({exc})")
    if problems:
        raise MotoInternalsChanged("moto's ASL interpreter moved:\n  " + "\n  ".join(problems))


_originals: dict[tuple[str, str], Any] = {}


def _original(module: str, qualname: str) -> Any:
    """moto's own function (before this module patched it)."""
    return _originals.get((module, qualname)) or _resolve(module, qualname)


def apply(provider: Provider | None) -> None:
    """Patch moto's interpreter once per process and (re)install ``provider``."""
    global _applied, _provider
    with _lock:
        _provider = provider
        if _applied:
            return
        verify()
        _patch_state_credentials()
        _patch_boto_client_for()
        _applied = True


def sourced_credentials(role_arn: str, source_arn: str) -> Any:
    """moto's ``StateCredentials`` carrying the state machine's ARN too."""
    base = _state_credentials_cls()
    cls = _sourced_cls(base)
    return cls(role_arn=role_arn, source_arn=source_arn)


@functools.cache
def _sourced_cls(base: type) -> type:
    """``SourcedCredentials(role_arn, source_arn)``, a subclass of moto's dataclass."""
    return make_dataclass("SourcedCredentials", [("source_arn", str, field(default=""))], bases=(base,))


def _patch_state_credentials() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask

    key = (_STATE_TASK, "StateTask._eval_state_credentials")
    original: Callable[..., Any] = StateTask._eval_state_credentials
    _originals[key] = original

    def _eval_state_credentials(self: Any, env: Any) -> Any:
        credentials = original(self, env)
        data = env.states.context_object.context_object_data.get("StateMachine") or {}
        return sourced_credentials(credentials.role_arn, str(data.get("Id") or ""))

    StateTask._eval_state_credentials = _eval_state_credentials  # type: ignore[method-assign]


def _patch_boto_client_for() -> None:
    import importlib

    module = importlib.import_module(_BOTO_CLIENT)
    original: Callable[..., Any] = module.boto_client_for
    _originals[(_BOTO_CLIENT, "boto_client_for")] = original

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        provider = _provider
        role_arn = getattr(state_credentials, "role_arn", "") or ""
        session = (
            provider(role_arn, getattr(state_credentials, "source_arn", ""))
            if provider and role_arn
            else None
        )
        if session is None:
            return original(region=region, service=service, state_credentials=state_credentials)
        return _client(region, service, session)

    for name in BOTO_CLIENT_USERS:
        importlib.import_module(name).boto_client_for = boto_client_for


def _client(region: str, service: str, session: Any) -> Any:
    """moto's client (``boto_client_for``), signed with the role's session."""
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    kwargs = {}
    if not botocore_stubber.enabled:
        kwargs["endpoint_url"] = f"http://localhost:{moto_server_port()}"
    return boto3.client(
        service_name=service,
        region_name=region,
        aws_access_key_id=session.access_key_id,
        aws_secret_access_key=session.secret_access_key,
        aws_session_token=session.session_token,
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        ),
        **kwargs,
    )
