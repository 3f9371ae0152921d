"""What a rule does with a message: match its SQL, run its actions, report failures.

As in AWS IoT, every enabled rule whose FROM filter matches the message's topic is evaluated
independently; a message that is not a JSON object is not run through JSON SQL (logged). When
``WHERE`` holds, the SELECT result goes to each action. An action that fails sends AWS's error
message to the rule's ``errorAction`` (``ruleName``, ``topic``, ``clientId``,
``base64OriginalPayload``, ``failures`` with ``failedAction``/``failedResource``/``errorMessage``)
or, without one, is logged. Actions other than ``lambda``, ``republish`` and ``s3`` are stored but
not run locally (logged once per rule).

The lambda action invokes the function asynchronously (``InvocationType=Event``) through the local
cloud's own Lambda API, as IoT does. AWS IoT invokes as the service principal
``iot.amazonaws.com``, so the function's resource-based policy (``AddPermission``) must allow it
``lambda:InvokeFunction``; it is evaluated with the rule's ARN as ``aws:SourceArn`` by the local
IAM evaluator. In ``MLOPS_EDGE_IAM=audit`` a refusal is logged and the function runs anyway; in
``off`` nothing is checked.

The s3 action puts the SELECT result at ``key`` in ``bucketName`` (both may use substitution
templates, e.g. ``state/presence/${clientId}.json``) as the rule's ``roleArn``: IoT assumes that
role (its trust policy must allow ``iot.amazonaws.com``) and PutObject is authorized as that role.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from paho.mqtt.client import topic_matches_sub

from local_cloud.services.iot_rules.models import RUN_ACTIONS, Rule
from local_cloud.services.iot_rules.sql import Message

LOG = logging.getLogger(__name__)
IOT_PRINCIPAL = "iot.amazonaws.com"
_ACTION_NAMES = {"lambda": "LambdaAction", "republish": "RepublishAction", "s3": "S3Action"}


class ActionFailed(Exception):
    """An action could not be carried out; the message is what the error action reports."""

    def __init__(self, resource: str, message: str) -> None:
        super().__init__(message)
        self.resource = resource


class Actions(Protocol):
    """Where actions land (the provider's Lambda client and MQTT connection; fakes in tests)."""

    def invoke(self, function_arn: str, event: bytes, rule: Rule) -> None: ...

    def publish(self, topic: str, payload: bytes, qos: int) -> None: ...

    def put_object(self, action: dict[str, str], payload: bytes, rule: Rule) -> None:
        """The s3 action: ``action`` holds ``bucketName``/``key`` already substituted."""
        ...


def substitute(template: str, message: Message) -> str:
    """Substitution templates (republish topics, s3 bucket names and keys): ``${expression}``
    is an SQL expression evaluated against the incoming message (``${topic()}``, ``${topic(n)}``,
    ``${field}``, ``${a.b}``); an Undefined one becomes the empty string, as IoT does."""
    from local_cloud.services.iot_rules.sql import UNDEFINED, parse

    out, rest = "", template
    while "${" in rest:
        before, _, after = rest.partition("${")
        expression, closed, rest = after.partition("}")
        if not closed:
            return out + before + "${" + after
        column = parse(f"SELECT {expression} AS v FROM '#'").select(message).get("v", UNDEFINED)
        out += before + ("" if column is UNDEFINED else str(column))
    return out + rest


class Engine:
    """Evaluates rules against messages and runs their actions."""

    def __init__(self, actions: Actions, rules: Callable[[], dict[str, Rule]]) -> None:
        self.actions = actions
        self.rules = rules
        self._warned: set[tuple[str, str]] = set()

    def handle(
        self,
        topic: str,
        raw: bytes,
        filters: set[str] | None = None,
        rules: dict[str, Rule] | None = None,
        client_id: str | None = None,
    ) -> int:
        """Run every enabled rule whose filter matches ``topic`` (and, when the transport knows
        which subscriptions this copy came through, is one of ``filters``); returns how many
        rules' WHERE held. ``rules``: the rules as they were when the message arrived."""
        candidates = [
            r
            for r in (self.rules() if rules is None else rules).values()
            if not r.disabled
            and topic_matches_sub(r.statement.topic_filter, topic)
            and (not filters or r.statement.topic_filter in filters)
        ]
        if not candidates:
            return 0
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            LOG.warning(
                "rules %s: the message on %s is not a JSON object; not evaluated",
                [r.name for r in candidates],
                topic,
            )
            return 0
        message = Message(topic, document, client_id)
        matched = 0
        for rule in candidates:
            try:
                if not rule.statement.matches(message):
                    continue
                matched += 1
                self.run(rule, message, raw)
            except Exception:
                LOG.exception("rule %s failed on %s", rule.name, topic)
        return matched

    def run(self, rule: Rule, message: Message, raw: bytes) -> None:
        """Each action with the SELECT result; a failure goes to the error action."""
        result = json.dumps(rule.statement.select(message)).encode()
        failures = []
        for action in rule.actions:
            try:
                self._act(rule, action, message, result)
            except ActionFailed as exc:
                kind = next(iter(action))
                failures.append(
                    {
                        "failedAction": _ACTION_NAMES.get(kind, kind),
                        "failedResource": exc.resource,
                        "errorMessage": str(exc),
                    }
                )
        if failures:
            self._report(rule, message, raw, failures)

    def _act(self, rule: Rule, action: dict[str, Any], message: Message, payload: bytes) -> None:
        kind, body = next(iter(action.items()))
        if kind == "lambda":
            self.actions.invoke(str(body["functionArn"]), payload, rule)
        elif kind == "republish":
            topic = substitute(str(body["topic"]), message)
            try:
                self.actions.publish(topic, payload, int(body.get("qos", 0)))
            except Exception as exc:
                raise ActionFailed(topic, f"Failed to republish: {exc}") from exc
        elif kind == "s3":
            target = {
                **{k: str(v) for k, v in body.items()},
                "bucketName": substitute(str(body["bucketName"]), message),
                "key": substitute(str(body["key"]), message),
            }
            self.actions.put_object(target, payload, rule)
        elif (rule.name, kind) not in self._warned:
            self._warned.add((rule.name, kind))
            LOG.warning(
                "rule %s: the %s action is not emulated by the local cloud (only %s)",
                rule.name,
                kind,
                RUN_ACTIONS,
            )

    def _report(self, rule: Rule, message: Message, raw: bytes, failures: list[dict[str, str]]) -> None:
        report = {
            "ruleName": rule.name,
            "topic": message.topic,
            "cloudwatchTraceId": str(uuid.uuid4()),
            "clientId": message.client_id or "",
            "base64OriginalPayload": base64.b64encode(raw).decode(),
            "failures": failures,
        }
        if not rule.error_action:
            LOG.error(
                "rule %s: action failed and the rule has no errorAction: %s", rule.name, json.dumps(failures)
            )
            return
        try:
            self._act(rule, rule.error_action, message, json.dumps(report).encode())
        except ActionFailed as exc:
            LOG.error("rule %s: its errorAction failed too (%s) for %s", rule.name, exc, json.dumps(failures))
