"""Lambda ``Invoke`` for functions created with the ordinary API (moto stores them; we run them).

Only the invoke route is served here; CreateFunction, GetFunction, UpdateFunctionCode... fall
through to moto. Results and errors are shaped as AWS returns them, so callers (boto3, moto's
Step Functions interpreter) cannot tell the difference.

Payload quotas (Lambda quotas page and the Invoke API reference: 6 MB synchronous, 1 MB
asynchronous), with AWS's error shapes:
- a request body over 6,291,456 bytes (``RequestResponse``, ``DryRun``) → 413
  ``RequestEntityTooLargeException`` "Request must be smaller than 6291456 bytes for the
  InvokeFunction operation"; over 1,048,576 bytes for ``Event`` → 413 "<n> byte payload is too
  large for the Event invocation type (limit 1048576 bytes)";
- a response (result or error document) over 6,291,556 bytes (AWS's figure: 6 MiB + 100, the whole
  of it usable) → the invoke still answers 200, as a function error: ``X-Amz-Function-Error:
  Unhandled`` and ``{"errorType": "Function.ResponseSizeTooLarge", "errorMessage": "Response
  payload size exceeded maximum allowed payload size (6291556 bytes)."}``.

Credentials: a function runs with a session of its own execution role, as Lambda gives it
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, session name = function
name), minted by the IAM authorizer (``ServerContext.iam``) after the role's trust policy let
``lambda.amazonaws.com`` assume it for this function (``aws:SourceArn``). A worker is keyed by its
session, so a refreshed session (before expiry) starts fresh workers. With ``MLOPS_EDGE_IAM=enforce``
a role that does not trust Lambda refuses CreateFunction, UpdateFunctionConfiguration and Invoke
with 400 ``InvalidParameterValueException`` "The role defined for the function cannot be assumed
by Lambda."; in audit and off mode the function runs with the admin keys instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext, mqtt_endpoint_env
from local_cloud.iam.enforce.sessions import RoleNotAssumable, SessionCredentials
from local_cloud.services.lambda_.pool import WorkerDied, WorkerPool, WorkerTimeout

LOG = logging.getLogger(__name__)
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/invocations/?$")
_CREATE = re.compile(r"^/2015-03-31/functions/?$")
_CONFIGURE = re.compile(r"^/2015-03-31/functions/(?P<fn>[^/]+)/configuration/?$")
#: variables of the endpoint's own environment a function must not inherit (its role's session
#: replaces them)
_CREDENTIAL_VARS = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE")
MAX_SYNC_REQUEST_BYTES = 6 * 1024 * 1024  # 6,291,456
MAX_ASYNC_REQUEST_BYTES = 1024 * 1024  # 1,048,576
INIT_LIMIT_S = 10.0  # Lambda's init phase limit: how long a pre-warm waits for a handler import
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100  # 6,291,556: AWS's own figure in the error below
RESPONSE_TOO_LARGE = {
    "errorType": "Function.ResponseSizeTooLarge",
    "errorMessage": f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
}


def request_too_large(size: int, invocation_type: str) -> str | None:
    """AWS's refusal message for an Invoke request body of ``size`` bytes, or None if it fits."""
    if invocation_type == "Event":
        if size > MAX_ASYNC_REQUEST_BYTES:
            return f"{size} byte payload is too large for the Event invocation type (limit {MAX_ASYNC_REQUEST_BYTES} bytes)"
        return None
    if size > MAX_SYNC_REQUEST_BYTES:
        return f"Request must be smaller than {MAX_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation"
    return None


def _invalid_parameter(message: str) -> Response:
    return Response(
        json.dumps({"Type": "User", "message": message}),
        status=400,
        headers={"x-amzn-ErrorType": "InvalidParameterValueException"},
        mimetype="application/json",
    )


def _handler(fn: Any) -> str:
    """``Handler`` for zip functions; for container-image functions the image's CMD (as the AWS
    base images use it), so the same handler module runs from the installed packages."""
    if fn.handler:
        return str(fn.handler)
    cmd = getattr(getattr(fn, "image_config", None), "cmd", None) or []
    return str(cmd[0]) if cmd else "lambda_function.handler"


class LambdaProvider:
    """Serves ``POST /2015-03-31/functions/{fn}/invocations``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.root = ctx.state_dir / "lambda"
        self.pool = WorkerPool(self.root / "logs")
        self._extract_lock = threading.Lock()

    def start(self) -> None:
        """Warm a worker for each function restored from the saved state, in the background and
        one init at a time (a dozen interpreters importing at once would crowd out the deploy that
        runs meanwhile on a 2-core machine): the endpoint's restart left none, and the next run's
        first invoke of each function would otherwise pay the cold start on the execution's path
        (functions created or updated later are pre-warmed by :meth:`observe`)."""
        threading.Thread(target=self._prewarm_restored, daemon=True, name="lambda-prewarm").start()

    def _prewarm_restored(self) -> None:
        from moto.awslambda.utils import get_backend

        for fn in list(get_backend(self.ctx.account_id, self.ctx.region).list_functions()):
            if self.ctx.stopping.is_set():
                return
            try:
                self.prewarm(fn, wait=True)
            except Exception:  # a function that cannot start now fails at its invoke, as before
                LOG.warning("pre-warming %s failed", fn.function_name, exc_info=True)

    def stop(self) -> None:
        self.pool.stop()

    # -- routing -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        match = _INVOKE.match(request.path)
        if not match or request.method != "POST":
            return self._check_role(request)
        fn = self._function(unquote(match["fn"]), request.args.get("Qualifier"))
        if fn is None:
            name = unquote(match["fn"])
            arn = (
                name
                if name.startswith("arn:")
                else f"arn:aws:lambda:{self.ctx.region}:{self.ctx.account_id}:function:{name}"
            )
            return Response(
                json.dumps({"Type": "User", "Message": f"Function not found: {arn}"}),
                status=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
                mimetype="application/json",
            )
        try:
            self._credentials(fn)
        except RoleNotAssumable as exc:
            return _invalid_parameter(str(exc))
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        payload = request.get_data(cache=True)
        refusal = request_too_large(len(payload), invocation_type)
        if refusal is not None:
            return Response(
                json.dumps({"Type": "User", "message": refusal}),
                status=413,
                headers={"x-amzn-ErrorType": "RequestEntityTooLargeException"},
                mimetype="application/json",
            )
        if invocation_type == "DryRun":
            return Response(status=204)
        if invocation_type == "Event":
            threading.Thread(target=self.invoke, args=(fn, payload), daemon=True).start()
            return Response(status=202)
        result = self.invoke(fn, payload)
        headers = {"X-Amz-Executed-Version": str(fn.version)}
        if result["error"]:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(result["logs"].encode()[-4096:]).decode()
        return Response(result["body"], status=200, headers=headers, mimetype="application/json")

    def _check_role(self, request: Request) -> Response | None:
        """CreateFunction / UpdateFunctionConfiguration naming a role Lambda may not assume."""
        iam = self.ctx.iam
        if iam is None or request.method not in ("POST", "PUT"):
            return None
        if request.method == "POST" and _CREATE.match(request.path):
            body = request.get_json(force=True, silent=True) or {}
            name = str(body.get("FunctionName") or "")
        elif request.method == "PUT" and (found := _CONFIGURE.match(request.path)):
            body = request.get_json(force=True, silent=True) or {}
            name = unquote(found["fn"])
        else:
            return None
        role = body.get("Role") if isinstance(body, dict) else None
        if not role or not name:
            return None
        refusal = iam.lambda_trust_refusal(str(role), self._function_arn(name))
        return _invalid_parameter(refusal) if refusal else None

    def _function_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return ":".join(name.split(":")[:7])
        return f"arn:aws:lambda:{self.ctx.region}:{self.ctx.account_id}:function:{name}"

    def _credentials(self, fn: Any) -> SessionCredentials | None:
        """The function's role session (None: the admin keys). ``RoleNotAssumable`` in enforce
        mode when Lambda may not assume the role."""
        iam = self.ctx.iam
        if iam is None:
            return None
        return iam.function_credentials(str(fn.role), self._function_arn(fn.function_arn), fn.function_name)

    def observe(self, request: Request, status: int) -> None:
        """After moto created or updated a function, start its worker in the background, so the
        first invoke finds the handler already imported (Lambda's provisioned concurrency, sort of)."""
        if request.method not in ("POST", "PUT") or status not in (200, 201):
            return
        path = request.path.rstrip("/")
        if path == "/2015-03-31/functions":
            name = (request.get_json(force=True, silent=True) or {}).get("FunctionName")
        elif path.startswith("/2015-03-31/functions/") and path.endswith(("/code", "/configuration")):
            name = unquote(path.split("/")[3])
        else:
            return
        fn = self._function(name, None) if name else None
        if fn is not None:
            threading.Thread(target=self.prewarm, args=(fn,), daemon=True).start()

    def prewarm(self, fn: Any, wait: bool = False) -> None:
        """Start an idle worker for ``fn``; ``wait``: return once its init (handler import) ended."""
        try:
            key, env, code_dir = self._worker_spec(fn)
        except RoleNotAssumable:
            LOG.info("not pre-warming %s: Lambda may not assume its role", fn.function_name)
            return
        self.pool.retire_others(f"{fn.function_name}\0", key)
        if not self.pool.has_idle(key):
            stream = time.strftime("%Y/%m/%d/") + f"[{fn.version}]" + uuid.uuid4().hex
            worker = self.pool.acquire(key, env, code_dir, stream)
            try:
                if wait:
                    worker.wait_ready(INIT_LIMIT_S)  # a timeout kills it: its invoke starts afresh
                    worker.cold = False
            finally:
                self.pool.release(worker)  # a dead worker is dropped

    def _function(self, name_or_arn: str, qualifier: str | None) -> Any:
        from moto.awslambda.utils import get_backend

        # the same backend moto's own Lambda responses use (the "simple" one without Docker)
        backend = get_backend(self.ctx.account_id, self.ctx.region)
        try:
            return backend.get_function(name_or_arn, qualifier)
        except Exception:
            LOG.debug("no function %s:%s", name_or_arn, qualifier, exc_info=True)
            return None

    # -- invocation ----------------------------------------------------------------------------
    def _code_dir(self, fn: Any) -> Path:
        code = getattr(fn, "code_bytes", b"") or b""  # container-image functions have no zip
        digest = hashlib.sha256(code).hexdigest()[:16]
        target = self.root / "code" / fn.function_name / digest
        with self._extract_lock:
            if not target.exists():
                tmp = target.with_name(target.name + ".tmp")
                tmp.mkdir(parents=True, exist_ok=True)
                if code:
                    with zipfile.ZipFile(io.BytesIO(code)) as archive:
                        archive.extractall(tmp)
                tmp.rename(target)
        return target

    def _worker_spec(self, fn: Any) -> tuple[str, dict[str, str], Path]:
        """Pool key (changes with code or configuration), environment and code directory."""
        code_dir = self._code_dir(fn)
        credentials = self._credentials(fn)
        env = self._env(fn, code_dir, credentials)
        config = json.dumps(
            [fn.handler, fn.environment_vars, fn.timeout, fn.memory_size], sort_keys=True, default=str
        )
        # a new session (refreshed before expiry, or another role) starts new workers
        session = credentials.access_key_id if credentials else "admin"
        key = f"{fn.function_name}\0{code_dir.name}\0{hashlib.sha256(config.encode()).hexdigest()[:12]}\0{session}"
        return key, env, code_dir

    def _env(self, fn: Any, code_dir: Path, credentials: SessionCredentials | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MOTO_PORT", None)
        for name in _CREDENTIAL_VARS:
            env.pop(name, None)
        env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
        env.update(self.ctx.aws_env())
        if credentials is not None:  # the function's role, as Lambda gives it
            env.update(credentials.env())
        broker = self.ctx.extras.get("broker")
        if broker is not None:  # the local IoT data endpoint (a port the template cannot know)
            env.update(mqtt_endpoint_env("127.0.0.1", broker.port))
        existing = os.environ.get("PYTHONPATH")
        env.update(
            {
                "_HANDLER": _handler(fn),
                "LAMBDA_TASK_ROOT": str(code_dir),
                "PYTHONPATH": str(code_dir) + (os.pathsep + existing if existing else ""),
                "PYTHONUNBUFFERED": "1",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
                "LOCAL_LAMBDA_FUNCTION_ARN": fn.function_arn,
            }
        )
        return env

    def invoke(self, fn: Any, payload: bytes) -> dict[str, Any]:
        """Run one invocation on a warm worker; returns body, error flag, logs, cold flag."""
        request_id = str(uuid.uuid4())
        key, env, code_dir = self._worker_spec(fn)
        self.pool.retire_others(f"{fn.function_name}\0", key)
        stream = time.strftime("%Y/%m/%d/") + f"[{fn.version}]" + uuid.uuid4().hex
        worker = self.pool.acquire(key, env, code_dir, stream)
        cold = worker.cold
        timeout = float(fn.timeout or 3)
        started = time.monotonic()
        logs = ""
        try:
            response = worker.invoke(
                {
                    "request_id": request_id,
                    "payload": payload.decode("utf-8", "replace"),
                    "deadline_ms": time.time() * 1000 + timeout * 1000,
                },
                timeout=timeout,
            )
            self.pool.release(worker)
            logs = response.get("logs", "")
            if "error" in response:
                body, error = json.dumps({**response["error"], "requestId": request_id}), True
            else:
                body, error = response["result"], False
        except WorkerTimeout:
            self.pool.discard(worker)
            body = json.dumps(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
                }
            )
            error = True
            logs = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {request_id} Task timed out after {timeout:.2f} seconds\n"
        except WorkerDied as exc:
            self.pool.discard(worker)
            body = json.dumps(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {exc}",
                }
            )
            error = True
        if len(body.encode("utf-8")) > MAX_RESPONSE_BYTES:
            body, error = json.dumps(RESPONSE_TOO_LARGE), True
        duration_ms = (time.monotonic() - started) * 1000
        self._write_logs(fn, worker.log_stream, request_id, logs, duration_ms)
        return {"body": body, "error": error, "logs": logs, "cold": cold, "duration_ms": duration_ms}

    def _write_logs(self, fn: Any, stream: str, request_id: str, logs: str, duration_ms: float) -> None:
        """Write the invocation's logs to CloudWatch Logs (moto's backend, in process)."""
        from moto.logs.models import logs_backends

        backend = logs_backends[self.ctx.account_id][self.ctx.region]
        group = f"/aws/lambda/{fn.function_name}"
        try:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            now = int(time.time() * 1000)
            lines = [f"START RequestId: {request_id} Version: {fn.version}"]
            lines += [line for line in logs.splitlines() if line.strip()]
            lines += [
                f"END RequestId: {request_id}",
                f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tMemory Size: {fn.memory_size} MB",
            ]
            backend.put_log_events(group, stream, [{"timestamp": now, "message": m} for m in lines])
        except Exception:
            LOG.exception("could not write Lambda logs for %s", fn.function_name)
