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
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from local_cloud.iam.authorize import Verdict, authorize
from local_cloud.iam.dependencies import FACTS
from local_cloud.iam.enforce.calls import ApiCall, credential_of, identify
from local_cloud.iam.enforce.log import DecisionLog
from local_cloud.iam.enforce.sessions import RoleNotAssumable, RoleSessions, SessionCredentials, session_name
from local_cloud.iam.enforce.store import PolicyStore, RolePolicies
from local_cloud.iam.evaluate import ImplicitlyDenied
from local_cloud.iam.exceptions import IamError, MissingResourceFact, PolicyError, UnsupportedConditionKey
from local_cloud.iam.operations import iam_action
from local_cloud.iam.policy import Policy
from local_cloud.iam.principals import Caller

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

LOG = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    OFF = "off"
    AUDIT = "audit"
    ENFORCE = "enforce"


IAM_MODE_ENV = "MLOPS_EDGE_IAM"
#: What AWS does: a role session may do only what its policies allow (`audit` logs would-be
#: refusals without refusing; `off` evaluates nothing).
DEFAULT_MODE = Mode.ENFORCE
LOG_NAME = Path("iam") / "decisions.jsonl"
LAMBDA = "lambda.amazonaws.com"
STATES = "states.amazonaws.com"
LAMBDA_TRUST_REFUSED = "The role defined for the function cannot be assumed by Lambda."
#: AWS SDKs reach AWS over HTTPS only; the local endpoint is plain HTTP on loopback.
CONTEXT: Mapping[str, object] = {"aws:SecureTransport": True}

#: Condition keys the evaluator knows (``keys.KNOWN_KEYS``) but this dispatcher never fills: the
#: target resource's tags, the resource a role is passed for. A statement conditioned on one that
#: could apply to the call is not decided (read as "absent", it would flip the statement).
UNFILLED_KEYS = ("aws:resourcetag/", "iam:associatedresourcearn")

#: ``(operation, params) -> facts`` for one service; None when the target does not exist.
FactSource = Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]


def mode_from_env(environ: Mapping[str, str] | None = None) -> Mode:
    value = (environ if environ is not None else os.environ).get(IAM_MODE_ENV, "").strip().lower()
    if not value:
        return DEFAULT_MODE
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(
            f"{IAM_MODE_ENV}={value!r}: expected one of {', '.join(m.value for m in Mode)}"
        ) from None


class Authorizer:
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

    @property
    def enforcing(self) -> bool:
        return self.mode is Mode.ENFORCE

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

    # -- credentials for the services that act as a role ----------------------------------------
    def function_credentials(
        self, role_arn: str, function_arn: str, function_name: str
    ) -> SessionCredentials | None:
        """The credentials a function runs with: its role's session (None: the admin keys, in
        off mode or when audit mode finds the role not assumable). ``RoleNotAssumable`` in
        enforce mode."""
        if self.mode is Mode.OFF:
            return None
        if not self._trusted(role_arn, (LAMBDA,), function_arn):
            if self.enforcing:
                raise RoleNotAssumable(LAMBDA_TRUST_REFUSED)
            return None
        return self._mint(role_arn, session_name(function_name))

    def state_machine_credentials(self, role_arn: str, state_machine_arn: str) -> SessionCredentials | None:
        """The credentials the state machine's service integrations are signed with."""
        if self.mode is Mode.OFF:
            return None
        principals = (STATES, f"states.{self.region}.amazonaws.com")
        if not self._trusted(role_arn, principals, state_machine_arn):
            if self.enforcing:
                raise RoleNotAssumable(
                    f"Neither the global service principal {STATES}, nor the regional one is "
                    f"authorized to assume the provided role ({role_arn})."
                )
            return None
        name = state_machine_arn.rsplit(":", 1)[-1] if state_machine_arn else "StepFunctions"
        return self._mint(role_arn, session_name(name))

    def lambda_trust_refusal(self, role_arn: str, function_arn: str) -> str | None:
        """CreateFunction / UpdateFunctionConfiguration: AWS's message when Lambda may not assume
        the role and this mode refuses; None otherwise."""
        if self.mode is Mode.OFF or self._trusted(role_arn, (LAMBDA,), function_arn):
            return None
        return LAMBDA_TRUST_REFUSED if self.enforcing else None

    def _mint(self, role_arn: str, name: str) -> SessionCredentials | None:
        try:
            return self.sessions.credentials(role_arn, name)
        except Exception as exc:
            LOG.exception("AssumeRole %s failed", role_arn)
            if self.enforcing:
                raise RoleNotAssumable(f"AssumeRole {role_arn} failed: {exc}") from exc
            return None

    def _trusted(self, role_arn: str, services: tuple[str, ...], source_arn: str) -> bool:
        check = None
        try:
            for service in services:
                check = self.sessions.trust(role_arn, service, source_arn)
                if check.allowed:
                    break
        except IamError as exc:  # a trust policy we cannot evaluate as AWS would
            LOG.warning("trust policy of %s cannot be decided: %s", role_arn, exc)
            if self.log is not None:
                self.log.write(
                    {
                        "type": "error",
                        "mode": self.mode.value,
                        "principal": services[0],
                        "action": "sts:AssumeRole",
                        "resources": [role_arn],
                        "error": f"{type(exc).__name__}: {exc}",
                        "refused": self.enforcing,
                    }
                )
            if self.enforcing:
                raise RoleNotAssumable(f"the trust policy of {role_arn} cannot be decided: {exc}") from exc
            return False
        assert check is not None
        key = (role_arn, services[0], source_arn)
        with self._trust_lock:
            changed = self._trust_logged.get(key) != check.allowed
            self._trust_logged[key] = check.allowed
        if changed and self.log is not None:
            decision = check.decision
            self.log.write(
                {
                    "type": "trust",
                    "mode": self.mode.value,
                    "principal": check.service,
                    "action": "sts:AssumeRole",
                    "resources": [role_arn],
                    "source_arn": source_arn,
                    "decision": decision.kind if decision else "NoSuchRole",
                    "statements": [str(s) for s in decision.statements] if decision else [],
                    "refused": self.enforcing and not check.allowed,
                }
            )
        return check.allowed

    def _trust_policy(self, role_arn: str) -> Policy | None:
        role = self.store.role(role_arn)
        if not role.exists:
            raise LookupError(role_arn)
        return role.trust

    # -- deciding ------------------------------------------------------------------------------
    def _decide(self, caller: Caller, call: ApiCall) -> Verdict:
        role = self.store.role(caller.role_arn)
        policies: list[Policy] = list(role.policies)
        bucket = call.params.get("Bucket") if call.service == "s3" else None
        if isinstance(bucket, str) and bucket:
            bucket_policy = self.store.bucket_policy(bucket)
            if bucket_policy is not None:
                policies.append(bucket_policy)
        facts, found = self._facts(call)
        verdict = authorize(
            principal=caller,
            service=call.service,
            operation=call.operation,
            params=call.params,
            policies=policies,
            account=caller.account or self.account,
            region=call.region,
            facts=facts,
            context=CONTEXT,
            dependent=found,
        )
        self._check_resolved(role, verdict)
        _check_filled(policies, verdict)
        return verdict

    @staticmethod
    def _check_resolved(role: RolePolicies, verdict: Verdict) -> None:
        denial = verdict.denial
        if denial is not None and role.unresolved and isinstance(denial[1], ImplicitlyDenied):
            raise PolicyError(
                f"{denial[0].action} is not allowed by the policies the local cloud can read, and "
                f"{role.arn} also has managed policies whose documents IAM does not hold here "
                f"({', '.join(role.unresolved)}): cannot tell whether AWS would allow it"
            )

    def _facts(self, call: ApiCall) -> tuple[Mapping[str, Any] | None, bool]:
        """(facts, target found) for the call's dependent actions (``dependencies.FACTS``)."""
        action = iam_action(call.service, call.operation, call.params)
        if action is None or action not in FACTS:
            return None, True
        source = self.facts.get(call.service)
        if source is None:
            raise MissingResourceFact(f"{action}: no provider supplies {', '.join(FACTS[action])}")
        facts = source(call.operation, call.params)
        return (facts, True) if facts is not None else (None, False)

    def _sagemaker_facts(self, operation: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group = params.get("ModelPackageGroupName")
        if operation != "CreateModelPackage" or not group:
            return {}
        sagemaker = self._client("sagemaker")
        count = 0
        for page in sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
            count += len(page.get("ModelPackageSummaryList", []))
        return {"ModelPackageVersion": count + 1}

    def _secretsmanager_facts(self, operation: str, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        secrets = self._client("secretsmanager")
        try:
            return {"SecretArn": secrets.describe_secret(SecretId=params.get("SecretId"))["ARN"]}
        except secrets.exceptions.ResourceNotFoundException:
            return None

    # -- answering and logging -----------------------------------------------------------------
    def _cannot_decide(
        self,
        caller: Caller,
        call: ApiCall | None,
        request: Request,
        request_id: str,
        exc: Exception,
        started: float,
    ) -> Response | None:
        cause = f"{type(exc).__name__}: {exc}"
        if self.log is not None:
            self.log.write(
                {
                    "type": "error",
                    "request_id": request_id,
                    "mode": self.mode.value,
                    **_who(caller),
                    "service": call.service if call else "",
                    "operation": call.operation if call else "",
                    "error": cause,
                    "refused": self.enforcing,
                    "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
                }
            )
        LOG.warning("IAM cannot decide %s %s for %s: %s", request.method, request.path, caller.arn, cause)
        if not self.enforcing:
            return None
        message = f"local cloud IAM cannot decide this request as AWS would: {cause}"
        return server_error(call.protocol if call else _guess_protocol(request), message, request_id)

    def _log_verdict(
        self,
        caller: Caller,
        call: ApiCall,
        verdict: Verdict,
        request_id: str,
        refused: bool,
        elapsed_ms: float,
    ) -> None:
        if self.log is None or not verdict.results:
            return
        base = {
            "type": "decision",
            "request_id": request_id,
            "mode": self.mode.value,
            **_who(caller),
            "service": call.service,
            "operation": call.operation,
            "elapsed_ms": round(elapsed_ms, 3),
        }
        for index, (check, decision) in enumerate(verdict.results):
            record: dict[str, Any] = {
                **base,
                "action": check.action,
                "resources": list(check.resources),
                "decision": decision.kind,
                "statements": [str(s) for s in decision.statements],
                "reason": check.reason,
                "refused": refused and not decision.allowed,
            }
            if not decision.allowed:
                record["message"] = verdict.message()
            if index == 0 and verdict.access.not_enforced:
                record["not_enforced"] = sorted(verdict.access.not_enforced)
            self.log.write(record)

    def _log_policies(self, role: RolePolicies) -> None:
        if self.log is not None and role.exists:
            self.log.write(
                {
                    "type": "policies",
                    "role": role.arn,
                    "policies": list(role.documents),
                    "unresolved": list(role.unresolved),
                }
            )

    @staticmethod
    def _response(error: Any) -> Response:
        from werkzeug.wrappers import Response

        return Response(error.body, status=error.status, headers=error.headers)


def _check_filled(policies: list[Policy], verdict: Verdict) -> None:
    """``UnsupportedConditionKey`` when a statement whose action covers a checked action has a
    condition on a key the dispatcher does not fill (``UNFILLED_KEYS``)."""
    actions = [check.action for check, _ in verdict.results]
    for policy in policies:
        for st in policy.statements:
            for clause in st.condition.clauses:
                if clause.key.startswith(UNFILLED_KEYS) and any(st.matches_action(a) for a in actions):
                    raise UnsupportedConditionKey(
                        f"policy {policy.name}: condition {clause.text} on {clause.key!r}: the local "
                        "cloud's dispatcher does not fill this key, so it cannot evaluate the "
                        "statement as AWS would"
                    )


def _who(caller: Caller) -> dict[str, str]:
    return {"principal": caller.arn, "role": caller.role_arn, "session": caller.arn.rsplit("/", 1)[-1]}


def _guess_protocol(request: Request) -> str:
    if request.headers.get("X-Amz-Target"):
        return "json"
    if (request.content_type or "").startswith("application/x-www-form-urlencoded"):
        return "query"
    return "rest-json"


def server_error(protocol: str, message: str, request_id: str) -> Response:
    """A 500 in the form the client's protocol parses, so botocore shows the message."""
    from werkzeug.wrappers import Response

    headers = {"x-amzn-RequestId": request_id}
    if protocol == "json":
        body = json.dumps({"__type": "InternalFailure", "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.0"
    elif protocol in ("rest-xml", "query"):
        code = "InternalError" if protocol == "rest-xml" else "InternalFailure"
        body = (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{escape(message)}"
            f"</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            if protocol == "query"
            else f"<Error><Code>{code}</Code><Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        )
        headers["Content-Type"] = "text/xml"
    else:
        body = json.dumps({"message": message})
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": "InternalFailure"})
    return Response(body, status=500, headers=headers)
