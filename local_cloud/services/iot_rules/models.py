"""Topic rules as the engine runs them, read from moto's IoT backend (the one store of rules).

moto keeps what CreateTopicRule/ReplaceTopicRule/Enable/Disable/DeleteTopicRule did, and its state
is saved and restored with the rest of moto's, so the engine holds no copy that could drift: it
reads ``iot_backends[account][region].rules`` whenever a rule call succeeded (the provider's
observer) and, cheaply, on a short poll (rules made another way, e.g. a restored state). Parsed
SQL is cached by its text.

``validate_payload`` is what AWS checks before it stores a rule and moto does not: the payload's
required members, the SQL version, at most 10 actions of one known kind each, the lambda action's
function ARN, the republish action's topic and role, the s3 action's bucket, key, role and canned
ACL, and SQL the local engine can run.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from local_cloud.services.iot_rules.exceptions import InvalidRequestException, SqlParseException
from local_cloud.services.iot_rules.sql import Statement, parse

LOG = logging.getLogger(__name__)
RULE_NAME = re.compile(r"^[a-zA-Z0-9_]+$")
SQL_VERSIONS = ("2015-10-08", "2016-03-23", "beta")
MAX_ACTIONS = 10
#: the actions the engine runs; the others are stored (AWS accepts them) and logged as not emulated
RUN_ACTIONS = ("lambda", "republish", "s3")
#: S3 canned ACLs an s3 action may name (CreateTopicRule's S3Action.cannedAcl)
CANNED_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)
_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]+)?$"
)


@dataclass(frozen=True)
class Rule:
    """One enabled-or-not rule as stored, with its parsed SQL."""

    name: str
    arn: str
    statement: Statement
    actions: tuple[dict[str, Any], ...]
    error_action: dict[str, Any] | None
    disabled: bool


def check_rule_name(name: str) -> None:
    if not 1 <= len(name) <= 128 or not RULE_NAME.match(name):
        raise InvalidRequestException(
            f"1 validation error detected: Value '{name}' at 'ruleName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$"
        )


def _check_action(action: Any, where: str) -> None:
    if not isinstance(action, dict) or len(action) != 1:
        raise InvalidRequestException(f"{where} must name exactly one action type")
    kind, body = next(iter(action.items()))
    if not isinstance(body, dict):
        raise InvalidRequestException(f"{where}.{kind} must be an object")
    if kind == "lambda" and not _FUNCTION_ARN.match(str(body.get("functionArn", ""))):
        raise InvalidRequestException(f"{where}.lambda.functionArn must be a Lambda function ARN")
    if kind == "republish":
        for member in ("topic", "roleArn"):
            if not isinstance(body.get(member), str) or not body[member]:
                raise InvalidRequestException(f"{where}.republish.{member} is required")
        if any(c in body["topic"] for c in "+#"):
            raise InvalidRequestException(f"{where}.republish.topic must not contain wildcards")
    if kind == "s3":
        for member in ("bucketName", "key", "roleArn"):
            if not isinstance(body.get(member), str) or not body[member]:
                raise InvalidRequestException(f"{where}.s3.{member} is required")
        if "cannedAcl" in body and body["cannedAcl"] not in CANNED_ACLS:
            raise InvalidRequestException(f"{where}.s3.cannedAcl must be one of {', '.join(CANNED_ACLS)}")


def validate_payload(payload: Any) -> Statement:
    """A ``topicRulePayload`` AWS would store; returns its parsed SQL."""
    if not isinstance(payload, dict):
        raise InvalidRequestException("topicRulePayload must be a JSON object")
    version = payload.get("awsIotSqlVersion")
    if version is not None and version not in SQL_VERSIONS:
        raise InvalidRequestException(f"awsIotSqlVersion must be one of {', '.join(SQL_VERSIONS)}")
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise InvalidRequestException("topicRulePayload.actions is required (a list)")
    if len(actions) > MAX_ACTIONS:
        raise InvalidRequestException(f"A rule can have at most {MAX_ACTIONS} actions")
    for index, action in enumerate(actions):
        _check_action(action, f"actions[{index}]")
    if payload.get("errorAction"):
        _check_action(payload["errorAction"], "errorAction")
    if "sql" not in payload:
        raise InvalidRequestException("topicRulePayload.sql is required")
    return parse(payload["sql"])


class RuleCache:
    """The rules moto holds, parsed; ``refresh`` says whether anything changed."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.rules: dict[str, Rule] = {}
        self._fingerprint: Any = None
        self._parsed: dict[str, Statement] = {}

    def _stored(self) -> dict[str, Any]:
        from moto.iot.models import iot_backends

        return dict(iot_backends[self.account_id][self.region].rules)

    def refresh(self) -> bool:
        stored = self._stored()
        fingerprint = tuple(
            (
                name,
                r.sql,
                r.rule_disabled,
                json.dumps([r.actions, r.error_action], sort_keys=True, default=str),
            )
            for name, r in sorted(stored.items())
        )
        if fingerprint == self._fingerprint:
            return False
        rules: dict[str, Rule] = {}
        for name, stored_rule in stored.items():
            statement = self._statement(stored_rule.sql)
            if statement is None:
                continue
            rules[name] = Rule(
                name=name,
                arn=stored_rule.arn,
                statement=statement,
                actions=tuple(stored_rule.actions or ()),
                error_action=stored_rule.error_action or None,
                disabled=bool(stored_rule.rule_disabled),
            )
        self.rules, self._fingerprint = rules, fingerprint
        return True

    def _statement(self, sql: str) -> Statement | None:
        """Parsed SQL; None (logged) for SQL the engine cannot run that reached moto without the
        provider's check (e.g. a state saved before the engine existed)."""
        if sql not in self._parsed:
            try:
                self._parsed[sql] = parse(sql)
            except SqlParseException as exc:
                LOG.warning("a topic rule's SQL cannot run locally and is skipped: %s (%s)", exc.message, sql)
                return None
        return self._parsed[sql]

    def topic_filters(self) -> set[str]:
        """The FROM filters of the enabled rules: what the engine subscribes to."""
        return {rule.statement.topic_filter for rule in self.rules.values() if not rule.disabled}
