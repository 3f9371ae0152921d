"""The endpoint process: moto's WSGI app behind a thin dispatch layer, on one loopback port.

Every request signed by a role session is first decided by the IAM authorizer
(``local_cloud.iam.enforce``; ``MLOPS_EDGE_IAM=enforce|audit|off``), which in enforce mode answers
a refusal itself. Requests are then routed, in order, to the local providers (what moto lacks or
does not run: Lambda invoke, SageMaker training jobs, the greengrassv2 API, the local admin API)
and everything else falls through to moto's ``DomainDispatcherApplication`` unchanged. ``MOTO_PORT`` is set to our own
port before moto is imported, so moto's Step Functions interpreter calls services through us too.
The response of a request that may have changed state is held back until that service's state is
durable on disk (``persistence.Durability``: issue 13 item 2, a crash loses nothing acknowledged).

Start-up (issue 15): the ready file is written once the port is bound, the providers are built and
the broker answers; restoring moto's saved state (a saved Step Functions state imports moto's
interpreter: 1-2 s on a 2-core machine) and starting the providers then run in a thread while the
caller goes on with its own work (the deploy's synthesis cache check). Every request waits for
that to finish (:meth:`DispatchLayer.open`), so none sees a half-restored cloud; if it fails,
requests get a 503 naming the failure and the endpoint stops. The Step Functions provider patches
moto's interpreter in a thread of its own (its requests alone wait for it).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext

LOG = logging.getLogger("local_cloud")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A provider returns a Response when it serves the request, None to let the next one try.
Provider = Callable[[Request], Response | None]
# An observer sees each request moto served and its status (e.g. to pre-warm a new function).
Observer = Callable[[Request, int], None]
# The authorizer answers a request it refuses (an AWS AccessDenied), None to let it through.
Authorizer = Callable[[Request], Response | None]
#: how long a request waits for the restore and the providers' start (a loaded 2-core machine)
OPEN_TIMEOUT_S = 120.0


class DispatchLayer:
    """WSGI app: authorize; ask each provider in turn; fall through to moto."""

    def __init__(
        self,
        providers: list[Provider],
        fallback: WsgiApp,
        observers: list[Observer] | None = None,
        authorizer: Authorizer | None = None,
        durability: Any = None,
    ) -> None:
        self.providers = providers
        self.fallback = fallback
        self.observers = observers or []
        self.authorizer = authorizer
        # persistence.Durability: a mutating request's effect is durable before its response
        self.durability = durability
        self._opened = threading.Event()  # moto's state restored and the providers started
        self._open_error: str | None = None

    def open(self, error: str | None = None) -> None:
        """Let requests through (``error``: the start failed; they get a 503 saying why)."""
        self._open_error = error
        self._opened.set()

    @property
    def open_error(self) -> str | None:
        """Why the start-up failed after the ready file, if it did."""
        return self._open_error

    def _not_open(self) -> Response | None:
        """None once the endpoint is open; else the 503 a request gets."""
        if not self._opened.wait(OPEN_TIMEOUT_S):
            message = f"local cloud still starting after {OPEN_TIMEOUT_S:.0f} s"
        elif self._open_error is not None:
            message = f"local cloud failed to start: {self._open_error}"
        else:
            return None
        return Response(
            json.dumps({"message": message}),
            status=503,
            headers={"x-amzn-ErrorType": "ServiceUnavailable", "x-amzn-RequestId": str(uuid.uuid4())},
            mimetype="application/json",
        )

    def _made_durable(self, request: Request, status: int) -> Response | None:
        """None once the request's effect is on disk; a 500 if it could not be saved."""
        if self.durability is None:
            return None
        try:
            self.durability.after(request, status)
        except Exception as exc:
            return Response(
                json.dumps({"message": f"local cloud could not save its state: {type(exc).__name__}: {exc}"}),
                status=500,
                headers={"x-amzn-ErrorType": "InternalFailure", "x-amzn-RequestId": str(uuid.uuid4())},
                mimetype="application/json",
            )
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        closed = self._not_open()
        if closed is not None:
            return closed(environ, start_response)
        if self.authorizer is not None:
            refusal = self.authorizer(request)  # before any provider or moto: one place for IAM
            if refusal is not None:
                return refusal(environ, start_response)
        for provider in self.providers:
            try:
                response = provider(request)
            except Exception as exc:  # a bug in a provider: an AWS-shaped 500, not an HTML page
                LOG.exception("provider failed on %s %s", request.method, request.path)
                response = Response(
                    json.dumps({"message": f"local cloud internal error: {type(exc).__name__}: {exc}"}),
                    status=500,
                    headers={"x-amzn-ErrorType": "ServiceException"},
                    mimetype="application/json",
                )
            if response is not None:
                response = self._made_durable(request, response.status_code) or response
                # botocore reads the request id from this header; moto's ASL interpreter needs it
                # to report a failed aws-sdk task (KeyError 'RequestId' otherwise)
                response.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
                return response(environ, start_response)
        # moto re-reads the body from wsgi.input; Request cached it, so hand moto a fresh stream.
        if request.content_length or environ.get("HTTP_TRANSFER_ENCODING"):
            import io

            body = request.get_data(cache=True)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        if not self.observers and self.durability is None:
            return self.fallback(environ, start_response)
        status: list[str] = []
        started: list[tuple[Any, ...]] = []

        def _start(code: str, headers: Any, *exc: Any) -> Any:
            # held back until the effect is durable: nothing reaches the client before that
            status.append(code)
            started.append((code, headers, *exc))
            return lambda data: early.append(data)

        early: list[bytes] = []
        body_iter = self.fallback(environ, _start)
        code = int(status[-1].split()[0]) if status else 0
        for observer in self.observers:
            try:
                observer(request, code)
            except Exception:
                LOG.exception("observer failed")
        refusal = self._made_durable(request, code)
        if refusal is not None:
            if hasattr(body_iter, "close"):
                body_iter.close()
            return refusal(environ, start_response)
        if started:
            start_response(*started[-1])
        return [*early, *body_iter] if early else body_iter


def _moto_app() -> WsgiApp:
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["lambda"] = {"use_docker": False}
    default_user_config["batch"] = {"use_docker": False}
    # AWS's certificate id is the SHA-256 of the certificate's DER (the broker's presence events
    # carry it as principalIdentifier); moto hashes the PEM unless told to parse the certificate.
    default_user_config["iot"] = {"use_valid_cert": True}
    _store_bucket_policies_only()
    return DomainDispatcherApplication(create_backend_app)


def _store_bucket_policies_only() -> None:
    """moto applies a bucket policy to object requests without its conditions, so the
    ``aws:SecureTransport`` Deny that every CDK bucket carries would deny every object (DESIGN.md,
    "IAM in moto"). Bucket policies are kept as deployed (GetBucketPolicy returns them, for the
    local IAM evaluator), and moto does not evaluate them."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: FakeBucket, action: str, resource: str) -> PermissionResult:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def build(ctx: ServerContext) -> tuple[DispatchLayer, list[Any]]:
    """Create the providers (each may own background workers) and the dispatch layer."""
    from local_cloud.admin import AdminProvider
    from local_cloud.health import HealthProvider
    from local_cloud.services.cloudformation.provider import CloudFormationProvider
    from local_cloud.services.events.provider import EventsProvider
    from local_cloud.services.greengrassv2.provider import GreengrassV2Provider
    from local_cloud.services.iot_rules.provider import IotRulesProvider
    from local_cloud.services.lambda_.provider import LambdaProvider
    from local_cloud.services.sagemaker.provider import SageMakerProvider
    from local_cloud.services.stepfunctions.provider import StepFunctionsProvider

    lambda_ = LambdaProvider(ctx)
    sagemaker = SageMakerProvider(ctx)
    greengrass = GreengrassV2Provider(ctx)
    admin = AdminProvider(ctx)
    stepfunctions = StepFunctionsProvider(ctx)  # patches moto's ASL interpreter once started
    cloudformation = CloudFormationProvider(ctx)  # moto's engine with local resource handlers
    events = EventsProvider(ctx)  # AWS service events; rules that start state machines
    health = HealthProvider(ctx, lambda_)  # GET /_mlops_edge/health, read-only
    iot_rules = IotRulesProvider(ctx)  # checks topic rules moto stores; runs them on the broker
    providers = [health, admin, lambda_, sagemaker, greengrass, stepfunctions, cloudformation, events]
    providers.append(iot_rules)
    iam = _iam(ctx, greengrass)
    stepfunctions.state_credentials = iam.state_machine_credentials
    app = DispatchLayer(
        [p.handle for p in providers],
        _moto_app(),
        [lambda_.observe, events.observe, iam.observe, greengrass.observe, iot_rules.observe],
        authorizer=iam.check,
        durability=_durability(ctx, cloudformation),
    )
    return app, [*providers, iam]


def _durability(ctx: ServerContext, cloudformation: Any) -> Any:
    """Every acknowledged mutation durable before its response (``persistence.Durability``)."""
    from local_cloud import persistence

    if os.environ.get("LOCAL_CLOUD_DURABLE", "1") == "0":  # bench/persistence.py's baseline only
        LOG.warning("LOCAL_CLOUD_DURABLE=0: state is saved at a clean stop only")
        return None
    durability = persistence.Durability(ctx.state_dir)
    durability.register("cloudformation", cloudformation.save)
    ctx.extras["durability"] = durability
    return durability


def _iam(ctx: ServerContext, greengrass: Any) -> Any:
    """The IAM authorizer (``MLOPS_EDGE_IAM``), the credentials it mints for functions and for
    the state machine's integrations (the Step Functions provider patches moto's interpreter to
    sign with them), and the provider facts its dependent-action checks need."""
    from local_cloud.iam.enforce import Authorizer

    iam = Authorizer.from_context(ctx)
    ctx.iam = iam
    iam.facts["greengrassv2"] = greengrass.backend.iam_facts
    LOG.info("IAM: %s (decision log %s)", iam.mode.value, iam.log_path)
    return iam


def _write_ready_file(ready_file: Path | None, ctx: ServerContext, broker: Any, started: float) -> None:
    """What a client needs to reach the endpoint and the broker, written atomically when usable."""
    info = {
        "pid": os.getpid(),
        "endpoint_url": ctx.endpoint_url,
        "port": ctx.port,
        "mqtt_host": "127.0.0.1",
        "mqtt_port": broker.port,
        "mosquitto_pid": broker.process.pid if broker.process else None,
        "ca_path": str(broker.ca.ca_path),
        "pipeline_cert": str(broker.pipeline.cert_path),
        "pipeline_key": str(broker.pipeline.key_path),
        "startup_s": round(time.monotonic() - started, 3),
    }
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)


def _shut_down(
    ctx: ServerContext, providers: list[Any], broker: Any, state_dir: Path, stopping: float
) -> None:
    """Stop the providers (newest first), save moto's state and stop the broker."""
    from local_cloud import persistence

    ctx.stopping.set()
    for provider in reversed(providers):
        stop = getattr(provider, "stop", None)
        if stop:
            try:
                stop()
            except Exception:
                LOG.exception("stopping %s failed", provider)
        LOG.info("stopped %s at +%.3fs", type(provider).__name__, time.monotonic() - stopping)
    durability = ctx.extras.get("durability")
    if durability is not None:
        LOG.info("durable snapshots: %s", json.dumps(durability.summary()))
    try:
        if ctx.extras.get("restored"):
            persistence.save_moto(state_dir)
        else:  # stopped before the saved state was loaded: saving now would overwrite it
            LOG.warning("moto state not saved: it was never restored")
    except Exception:
        LOG.exception("saving moto state failed")
    LOG.info("saved moto state at +%.3fs", time.monotonic() - stopping)
    broker.stop()


def _open(
    ctx: ServerContext, app: DispatchLayer, providers: list[Any], started: float, stop: Callable[..., None]
) -> None:
    """Restore moto's state, start the providers, then let requests through; on a failure, make
    the waiting requests fail with the reason and stop the endpoint (as a failed start did)."""
    from local_cloud import persistence

    try:
        persistence.restore_moto(ctx.state_dir)
        ctx.extras["restored"] = True
        LOG.info("moto state restored at +%.3fs", time.monotonic() - started)
        for provider in providers:
            start = getattr(provider, "start", None)
            if start:
                start()
                LOG.debug("started %s at +%.3fs", type(provider).__name__, time.monotonic() - started)
    except Exception as exc:
        LOG.exception("start-up failed after the ready file")
        app.open(f"{type(exc).__name__}: {exc}")
        stop(signal.SIGTERM, None)
        return
    LOG.info("open (state restored, providers started) at +%.3fs", time.monotonic() - started)
    app.open()


def serve(state_dir: Path, ready_file: Path | None = None, port: int = 0, mqtt_port: int = 0) -> None:
    """Run the endpoint in the foreground until SIGTERM/SIGINT; write ``ready_file`` when usable.

    Loopback only (admin and health routes are unauthenticated). ``port`` and ``mqtt_port`` (the
    broker's) 0 take ephemeral ports; a fixed port that is taken ends it with a message naming it."""
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    ctx = ServerContext(state_dir=state_dir)
    # Bind first: moto reads MOTO_PORT lazily, but it must be our real port before any execution.
    try:
        httpd = make_server("127.0.0.1", port, app=None, threaded=True)  # type: ignore[arg-type]
    except OSError as exc:
        raise SystemExit(f"local cloud: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    ctx.port = httpd.server_port
    os.environ["MOTO_PORT"] = str(ctx.port)
    os.environ.update({k: v for k, v in ctx.aws_env().items() if k != "AWS_ENDPOINT_URL"})
    from local_cloud.mqtt.broker import Broker, BrokerPortInUse

    def _stop(signum: int, frame: Any) -> None:
        ctx.stopping.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    # installed before mosquitto starts, so a SIGTERM during start-up still stops it
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    broker = Broker(state_dir / "mqtt", port=mqtt_port)
    providers: list[Any] = []
    try:
        broker.launch()  # mosquitto starts while we import moto
        ctx.extras["broker"] = broker
        app, providers = build(ctx)
        httpd.app = app
        LOG.info("providers built at +%.3fs", time.monotonic() - started)
        broker.wait_ready()
        LOG.info("broker up at +%.3fs", time.monotonic() - started)
    except BrokerPortInUse as exc:
        broker.stop()
        httpd.server_close()
        raise SystemExit(f"local cloud: {exc}") from None
    except BaseException:
        broker.stop()
        raise
    _write_ready_file(ready_file, ctx, broker, started)
    LOG.info("ready in %.3fs (requests wait for the restore)", time.monotonic() - started)
    opening = threading.Thread(
        target=_open, args=(ctx, app, providers, started, _stop), daemon=True, name="open"
    )
    opening.start()
    try:
        httpd.serve_forever(poll_interval=0.1)
    finally:
        stopping = time.monotonic()
        opening.join(timeout=OPEN_TIMEOUT_S)  # a stop during the restore: let it finish first
        _shut_down(ctx, providers, broker, state_dir, stopping)
        httpd.server_close()
        LOG.info("stopped in %.3fs", time.monotonic() - stopping)
        # Everything is saved: the interpreter's exit need not garbage-collect moto's object graphs
        # one by one (measured 2-3 s of a 3 s stop on the 2-core machine).
        gc.freeze()
    if app.open_error is not None:
        raise SystemExit(f"local cloud: start-up failed: {app.open_error}")
