"""AWS IoT topic rules, run: the local form of IoT's rules engine.

moto serves and stores the topic-rule API (Create/Get/List/Replace/Enable/Disable/DeleteTopicRule).
This provider adds what moto lacks:

- ``handle``: before moto stores a rule (CreateTopicRule ``POST /rules/{ruleName}``,
  ReplaceTopicRule ``PATCH /rules/{ruleName}``), the checks AWS makes (``models.validate_payload``)
  and SQL the local engine can run (``sql.py``): refusals are AWS's ``InvalidRequestException`` /
  ``SqlParseException``;
- ``observe``: after a successful rule call, the engine re-reads moto's rules and changes its
  subscriptions before the response goes out, so a rule is live (or gone) when the call returns;
  a 1-second poll catches rules that reached moto another way (a restored state);
- the engine itself (``engine.py``) on an MQTT connection of its own (``transport.py``), and the
  actions' targets: the local Lambda API (``InvocationType=Event``, after the function's resource
  policy allowed ``iot.amazonaws.com``), the broker (republish) and the local S3 API (s3: PutObject
  signed with a session of the action's role, which ``iot.amazonaws.com`` must be trusted to
  assume, so the role's IAM policies decide as on AWS).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.iam.enforce.calls import credential_of
from local_cloud.services.iot_rules.engine import IOT_PRINCIPAL, ActionFailed, Engine
from local_cloud.services.iot_rules.models import Rule, RuleCache, check_rule_name, validate_payload
from local_cloud.services.iot_rules.transport import RulesTransport
from local_cloud.services.restjson import ServiceError

LOG = logging.getLogger(__name__)
_RULE_PATH = re.compile(r"^/rules/(?P<name>[^/]+)/?$")
_RULE_CALL = re.compile(r"^/rules/[^/]+(/enable|/disable)?/?$")
#: the engine's client id: under the control plane's prefix (local_cloud.mqtt.broker)
CLIENT_ID = "mlops-edge-control-plane-rules"
POLL_S = 1.0


def _error(exc: ServiceError) -> Response:
    return Response(
        json.dumps({"message": exc.message}),
        status=400,
        headers={"x-amzn-ErrorType": exc.code},
        mimetype="application/json",
    )


def _is_iot(request: Request) -> bool:
    credential = credential_of(request.headers)
    return credential is not None and credential.service == "iot"


class IotRulesProvider:
    """Validates rule writes, follows moto's rules, runs them on the broker's messages."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.cache = RuleCache(ctx.account_id, ctx.region)
        self.engine = Engine(self, lambda: self.cache.rules)
        self.transport = RulesTransport(self.engine.handle, stamp=lambda: self.cache.rules)
        self._lock = threading.Lock()
        self._lambda: Any = None
        self._s3: dict[str, tuple[str, Any]] = {}  # role ARN -> (session access key, client)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        broker = self.ctx.extras.get("broker")
        if broker is not None:
            ident = broker.control_plane
            self.transport.connect(
                "127.0.0.1",
                broker.port,
                str(ident.ca_path),
                str(ident.cert_path),
                str(ident.key_path),
                CLIENT_ID,
            )
        self.refresh()
        threading.Thread(target=self._poll, daemon=True, name="iot-rules-poll").start()

    def stop(self) -> None:
        self.transport.close()

    def _poll(self) -> None:
        while not self.ctx.stopping.wait(POLL_S):
            try:
                self.refresh()
            except Exception:
                LOG.exception("reading the topic rules failed")

    def refresh(self) -> None:
        """Re-read moto's rules; subscribe to what the enabled ones need."""
        # one refresh at a time, subscriptions included: two racing ones could otherwise leave
        # the older set of filters subscribed while the cache holds the newer rules
        with self._lock:
            if not self.cache.refresh():
                return
            filters = self.cache.topic_filters()
            self.transport.sync(filters)
        LOG.info("topic rules: %d (%d filters)", len(self.cache.rules), len(filters))

    # -- the API -------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        match = _RULE_PATH.match(request.path)
        if match is None or request.method not in ("POST", "PATCH") or not _is_iot(request):
            return None
        try:
            check_rule_name(match["name"])
            try:
                payload = json.loads(request.get_data(cache=True) or b"null")
            except ValueError as exc:
                raise ServiceError(
                    "InvalidRequestException", f"The request body is not JSON: {exc}"
                ) from None
            validate_payload(payload)
        except ServiceError as exc:
            return _error(exc)
        return None  # moto stores it

    def observe(self, request: Request, status: int) -> None:
        if status < 300 and _RULE_CALL.match(request.path) and request.method != "GET" and _is_iot(request):
            self.refresh()

    # -- what actions reach (engine.Actions) ---------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.transport.publish(topic, payload, qos)

    def invoke(self, function_arn: str, event: bytes, rule: Rule) -> None:
        """Invoke asynchronously, as IoT does, once the function's policy lets IoT do it."""
        if self._lambda is None:
            self._lambda = self.ctx.client("lambda")
        refusal = self._permission_refusal(function_arn, rule)
        if refusal is not None:
            mode = getattr(self.ctx.iam, "mode", None)
            if getattr(mode, "value", "") == "enforce":
                raise ActionFailed(function_arn, refusal)
            LOG.warning(
                "rule %s: %s (IAM %s: invoked anyway)", rule.name, refusal, getattr(mode, "value", "")
            )
        try:
            self._lambda.invoke(FunctionName=function_arn, InvocationType="Event", Payload=event)
        except Exception as exc:
            raise ActionFailed(function_arn, f"Failed to invoke lambda function: {exc}") from exc

    def _permission_refusal(self, function_arn: str, rule: Rule) -> str | None:
        """Why ``iot.amazonaws.com`` may not invoke the function for this rule (None: it may)."""
        if self.ctx.iam is None or getattr(self.ctx.iam.mode, "value", "") == "off":
            return None
        from local_cloud.iam.evaluate import decide, request_for
        from local_cloud.iam.policy import PolicyKind, parse_policy

        try:
            document = self._lambda.get_policy(FunctionName=function_arn)["Policy"]
        except self._lambda.exceptions.ResourceNotFoundException as exc:
            return f"Function or its resource-based policy not found ({exc.response['Error']['Message']}): {IOT_PRINCIPAL} is not allowed to invoke it"
        except Exception as exc:
            return f"Could not read the function's resource-based policy: {exc}"
        try:
            policy = parse_policy(document, name=f"{function_arn} policy", kind=PolicyKind.RESOURCE)
        except Exception as exc:
            return f"The function's resource-based policy is not valid: {exc}"
        context = {"aws:SourceArn": rule.arn, "aws:SourceAccount": self.ctx.account_id}
        # a qualified ARN (version, alias) is allowed by a statement on it or on the function
        for resource in dict.fromkeys([function_arn, ":".join(function_arn.split(":")[:7])]):
            asked = request_for(
                IOT_PRINCIPAL, "lambda:InvokeFunction", resource, context, region=self.ctx.region
            )
            if decide(asked, [policy]).allowed:
                return None
        return f"{IOT_PRINCIPAL} is not allowed lambda:InvokeFunction on {function_arn} for {rule.arn} by its resource-based policy"

    def put_object(self, action: dict[str, str], payload: bytes, rule: Rule) -> None:
        """The s3 action: PutObject as the action's role, assumed by ``iot.amazonaws.com``."""
        bucket, key = action["bucketName"], action["key"]
        resource = f"{bucket}/{key}"
        if not bucket or not key:
            raise ActionFailed(resource, "Failed to put S3 object: the bucket or key template is empty")
        try:
            client = self._s3_client(action["roleArn"], rule)
        except Exception as exc:
            raise ActionFailed(resource, f"Failed to assume the role {action['roleArn']}: {exc}") from exc
        extra = {"ACL": action["cannedAcl"]} if action.get("cannedAcl") else {}
        try:
            client.put_object(Bucket=bucket, Key=key, Body=payload, **extra)
        except Exception as exc:
            raise ActionFailed(resource, f"Failed to put S3 object. The error received was {exc}") from exc

    def _s3_client(self, role_arn: str, rule: Rule) -> Any:
        """An S3 client signed as ``role_arn``'s session (the admin keys when IAM is off, or when
        audit mode finds the role not assumable); one per role, renewed with its session."""
        import boto3
        from botocore.config import Config

        creds = None
        if self.ctx.iam is not None:
            creds = self.ctx.iam.service_credentials(
                role_arn, IOT_PRINCIPAL, rule.arn, f"iot-rule-{rule.name}"
            )
        if creds is None:
            return self._s3.setdefault("", ("", self.ctx.client("s3")))[1]
        held = self._s3.get(role_arn)
        if held is None or held[0] != creds.access_key_id:  # first use, or a renewed session
            self._s3[role_arn] = (
                creds.access_key_id,
                boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.ctx.endpoint_url,
                    region_name=self.ctx.region,
                    aws_access_key_id=creds.access_key_id,
                    aws_secret_access_key=creds.secret_access_key,
                    aws_session_token=creds.session_token,
                    config=Config(retries={"max_attempts": 2}),
                ),
            )
        return self._s3[role_arn][1]
