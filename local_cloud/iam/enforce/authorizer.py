"""The dispatch layer's authorizer: every request signed by a role session is decided here,
before any provider or moto sees it.

``MLOPS_EDGE_IAM`` (read by the endpoint at start) says what happens:

- ``enforce``: a refused call gets AWS's ``AccessDenied``/``AccessDeniedException`` (the
  evaluator renders status, headers and body for the service's protocol); a call that cannot be
  decided as AWS would (``IamError``: a condition key we do not fill, an operation without IAM
  data, a missing provider fact…) gets a server error naming the cause, never an Allow; a
  function whose role does not trust ``lambda.amazonaws.com`` is not created or run;
- ``audit``: the same decisions, logged, never refused (the default until ``mlops-edge run``
  deploys the synthesized template's roles: ``DEFAULT_MODE``);
- ``off``: nothing is evaluated; functions and the state machine run with the admin identity,
  as before roles had credentials of their own.

Requests signed with any key that is not an assumed-role session (the static admin keys of the
CLI, the tests and the local cloud's own providers) are not evaluated: they act as an admin.
Every decision is appended to ``<state dir>/iam/decisions.jsonl`` (``log``).

The authorizer is assembled from ``modes`` (the mode and its switch), ``role_credentials``
(trust checks, role sessions for functions and the state machine), ``deciding`` (the check
itself) and ``answering`` (decision logging, refusals and server errors).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local_cloud.iam.enforce.answering import Answering, server_error
from local_cloud.iam.enforce.calls import ApiCall, credential_of, identify
from local_cloud.iam.enforce.deciding import CONTEXT, UNFILLED_KEYS, Deciding, FactSource
from local_cloud.iam.enforce.log import DecisionLog
from local_cloud.iam.enforce.modes import DEFAULT_MODE, IAM_MODE_ENV, LOG_NAME, Mode, mode_from_env
from local_cloud.iam.enforce.role_credentials import LAMBDA, LAMBDA_TRUST_REFUSED, STATES, RoleCredentials
from local_cloud.iam.enforce.sessions import RoleSessions
from local_cloud.iam.enforce.store import PolicyStore
from local_cloud.iam.exceptions import IamError

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

LOG = logging.getLogger(__name__)


class Authorizer(RoleCredentials, Deciding, Answering):
    """Decides, logs and (in enforce mode) refuses; also the source of role credentials."""

    def __init__(
        self,
        mode: Mode,
        *,
        client: Callable[[str], Any],
        account: str,
        region: str,
        log_path: Path,
        admin_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.mode = mode
        self.account = account
        self.region = region
        self.admin_keys = admin_keys
        self.log_path = log_path
        self.log = DecisionLog(log_path) if mode is not Mode.OFF else None
        self.store = PolicyStore(client, on_role_loaded=self._log_policies)
        self.sessions = RoleSessions(client, self._trust_policy, account)
        self._client = client
        self.facts: dict[str, FactSource] = {
            "sagemaker": self._sagemaker_facts,
            "secretsmanager": self._secretsmanager_facts,
        }
        self._trust_logged: dict[tuple[str, str, str], bool] = {}
        self._trust_lock = threading.Lock()

    @classmethod
    def from_context(cls, ctx: Any, mode: Mode | None = None) -> Authorizer:
        from local_cloud.context import ACCESS_KEY

        return cls(
            mode or mode_from_env(),
            client=ctx.client,
            account=ctx.account_id,
            region=ctx.region,
            log_path=ctx.state_dir / LOG_NAME,
            admin_keys=frozenset({ACCESS_KEY}),
        )

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def start(self) -> None:
        """Once the endpoint serves: warm the dataset and routers in the background."""
        if self.mode is not Mode.OFF:
            threading.Thread(target=self.warm, daemon=True, name="iam-warm").start()

    stop = close  # the endpoint starts and stops it with its providers

    def warm(self) -> None:
        """Load the IAM dataset and the routers of the services roles call (background, at start:
        the first decision would otherwise pay ~0.3 s for the dataset and up to 0.4 s a router)."""
        from moto.core.routing import get_service_router

        from local_cloud.iam.dataset import dataset

        dataset()
        for service in ("lambda", "s3", "stepfunctions", "sagemaker", "greengrassv2", "iot", "sts"):
            try:
                get_service_router(service)
            except Exception:
                LOG.debug("no router for %s", service, exc_info=True)

    # -- the dispatcher's calls ----------------------------------------------------------------
    def check(self, request: Request) -> Response | None:
        """None to let the request through; the refusal to send otherwise."""
        if self.mode is Mode.OFF:
            return None
        credential = credential_of(request.headers, request.query_string)
        if credential is None or credential.access_key in self.admin_keys:
            return None
        caller = self.sessions.caller(credential.access_key)
        if caller is None:
            return None
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        call: ApiCall | None = None
        try:
            call = identify(request.environ, request.get_data(cache=True), credential)
            verdict = self._decide(caller, call)
        except IamError as exc:
            return self._cannot_decide(caller, call, request, request_id, exc, started)
        except Exception as exc:  # a bug here must not read as an Allow in enforce mode
            LOG.exception("IAM authorizer failed on %s %s", request.method, request.path)
            return self._cannot_decide(caller, call, request, request_id, exc, started)
        elapsed_ms = (time.perf_counter() - started) * 1000
        refused = self.enforcing and not verdict.allowed
        self._log_verdict(caller, call, verdict, request_id, refused, elapsed_ms)
        if not refused:
            return None
        return self._response(
            verdict.response(request_id=request_id, method=request.method, protocol=call.protocol)
        )

    def observe(self, request: Request, status: int) -> None:
        """After moto served a request: a write that may change policies empties the caches."""
        if status >= 400 or request.method in ("GET", "HEAD"):
            return
        credential = credential_of(request.headers, request.query_string)
        service = credential.service if credential else ""
        if service == "iam":
            action = str(request.values.get("Action", ""))
            if action.startswith(("Get", "List", "Simulate", "Generate")):
                return
        elif service == "s3":
            if "policy" not in request.args:
                return
        elif service != "cloudformation":
            return
        self.store.invalidate()


__all__ = [
    "CONTEXT",
    "DEFAULT_MODE",
    "IAM_MODE_ENV",
    "LAMBDA",
    "LAMBDA_TRUST_REFUSED",
    "LOG_NAME",
    "STATES",
    "UNFILLED_KEYS",
    "Authorizer",
    "FactSource",
    "Mode",
    "mode_from_env",
    "server_error",
]
