"""The local IoT rules engine without a broker or an endpoint: rule checks at create time, rules
read from moto's backend, actions and error reports against in-memory targets, and the lambda
action's resource-policy check as ``iot.amazonaws.com``."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local_cloud.context import ServerContext
from local_cloud.services.iot_rules.engine import ActionFailed, Engine, substitute
from local_cloud.services.iot_rules.exceptions import InvalidRequestException, SqlParseException
from local_cloud.services.iot_rules.models import Rule, RuleCache, check_rule_name, validate_payload
from local_cloud.services.iot_rules.provider import IotRulesProvider
from local_cloud.services.iot_rules.sql import Message, parse

FN = "arn:aws:lambda:us-east-1:123456789012:function:monitor"
RULE_ARN = "arn:aws:iot:us-east-1:123456789012:rule/r1"


def _rule(
    sql: str, actions: list[dict[str, Any]], error_action: dict[str, Any] | None = None, **kw: Any
) -> Rule:
    name = kw.pop("name", "r1")
    return Rule(
        name,
        f"arn:aws:iot:us-east-1:123456789012:rule/{name}",
        parse(sql),
        tuple(actions),
        error_action,
        kw.get("disabled", False),
    )


class FakeActions:
    def __init__(self, fail_invoke: bool = False) -> None:
        self.invoked: list[tuple[str, dict[str, Any], str]] = []
        self.published: list[tuple[str, dict[str, Any], int]] = []
        self.fail_invoke = fail_invoke

    def invoke(self, function_arn: str, event: bytes, rule: Rule) -> None:
        if self.fail_invoke:
            raise ActionFailed(function_arn, "denied on purpose")
        self.invoked.append((function_arn, json.loads(event), rule.name))

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.published.append((topic, json.loads(payload), qos))


# -- what AWS checks before it stores a rule ----------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "error", "says"),
    [
        ("not an object", InvalidRequestException, "JSON object"),
        ({"sql": "SELECT * FROM 'a'"}, InvalidRequestException, "actions is required"),
        ({"actions": []}, InvalidRequestException, "sql is required"),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [], "awsIotSqlVersion": "2020"},
            InvalidRequestException,
            "one of",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {}}] * 11},
            InvalidRequestException,
            "at most 10",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {"functionArn": "monitor"}}]},
            InvalidRequestException,
            "function ARN",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [{"lambda": {"functionArn": FN}, "sns": {}}]},
            InvalidRequestException,
            "exactly one",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [{"republish": {"topic": "a/#", "roleArn": "r"}}]},
            InvalidRequestException,
            "wildcards",
        ),
        (
            {"sql": "SELECT * FROM 'a'", "actions": [], "errorAction": {"republish": {"topic": "e"}}},
            InvalidRequestException,
            "roleArn",
        ),
        ({"sql": "SELECT * FROM a", "actions": []}, SqlParseException, "quoted topic filter"),
    ],
)
def test_validate_payload_refuses(payload: Any, error: type, says: str) -> None:
    with pytest.raises(error) as raised:
        validate_payload(payload)
    assert says in raised.value.message


def test_validate_payload_accepts_actions_it_does_not_run() -> None:
    stmt = validate_payload(
        {"sql": "SELECT * FROM 'a/+'", "actions": [{"sns": {"targetArn": "x", "roleArn": "y"}}]}
    )
    assert stmt.topic_filter == "a/+"


@pytest.mark.parametrize("name", ["", "has-dash", "a" * 129, "spa ce"])
def test_rule_names(name: str) -> None:
    with pytest.raises(InvalidRequestException, match="ruleName"):
        check_rule_name(name)
    check_rule_name("monitoring_Rule_1")


# -- rules as moto stores them ---------------------------------------------------------------
def test_rule_cache_follows_moto() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        iot = boto3.client("iot", region_name="us-east-1")
        cache = RuleCache("123456789012", "us-east-1")
        assert cache.refresh() and cache.rules == {}
        payload = {"sql": "SELECT * FROM 'edge/+/monitoring'", "actions": [{"lambda": {"functionArn": FN}}]}
        iot.create_topic_rule(ruleName="r1", topicRulePayload=payload)
        iot.create_topic_rule(ruleName="r2", topicRulePayload={**payload, "sql": "SELECT * FROM 'a/#'"})
        assert cache.refresh() and set(cache.rules) == {"r1", "r2"}
        assert cache.topic_filters() == {"edge/+/monitoring", "a/#"}
        assert not cache.refresh()  # nothing changed
        iot.disable_topic_rule(ruleName="r2")
        assert cache.refresh() and cache.topic_filters() == {"edge/+/monitoring"}
        assert cache.rules["r1"].arn.endswith(":rule/r1") and cache.rules["r1"].actions == (
            {"lambda": {"functionArn": FN}},
        )
        iot.delete_topic_rule(ruleName="r1")
        assert cache.refresh() and set(cache.rules) == {"r2"} and cache.topic_filters() == set()


# -- the engine ----------------------------------------------------------------------------------
def test_engine_runs_matching_enabled_rules_once_each() -> None:
    actions = FakeActions()
    rules = {
        "r1": _rule(
            "SELECT n, topic(2) AS thing FROM 'edge/+/monitoring' WHERE n > 1",
            [{"lambda": {"functionArn": FN}}],
        ),
        "r2": _rule(
            "SELECT * FROM 'edge/#'",
            [{"republish": {"topic": "out/${topic(2)}/${n}", "roleArn": "r"}}],
            name="r2",
        ),
        "off": _rule("SELECT * FROM 'edge/#'", [{"lambda": {"functionArn": FN}}], name="off", disabled=True),
        "other": _rule("SELECT * FROM 'other/#'", [{"lambda": {"functionArn": FN}}], name="other"),
    }
    engine = Engine(actions, lambda: rules)
    assert engine.handle("edge/t1/monitoring", b'{"n": 2, "x": 1}') == 2
    assert actions.invoked == [(FN, {"n": 2, "thing": "t1"}, "r1")]
    assert actions.published == [("out/t1/2", {"n": 2, "x": 1}, 0)]
    assert engine.handle("edge/t1/monitoring", b'{"n": 1}') == 1  # r1's WHERE fails
    assert len(actions.invoked) == 1
    # a copy delivered for one subscription runs only the rules of that filter
    assert engine.handle("edge/t1/monitoring", b'{"n": 5}', filters={"edge/#"}) == 1
    assert len(actions.invoked) == 1 and len(actions.published) == 3
    # the rules as they were when the message arrived
    assert engine.handle("edge/t1/monitoring", b'{"n": 5}', rules={}) == 0
    assert engine.handle("edge/t1/monitoring", b"not json") == 0
    assert engine.handle("edge/t1/monitoring", b"[1, 2]") == 0


def test_failed_action_goes_to_error_action() -> None:
    actions = FakeActions(fail_invoke=True)
    error = {"republish": {"topic": "errors/${topic(2)}", "roleArn": "r"}}
    rules = {"r1": _rule("SELECT * FROM 'edge/+/m'", [{"lambda": {"functionArn": FN}}], error)}
    Engine(actions, lambda: rules).handle("edge/t1/m", b'{"n": 1}')
    [(topic, report, _)] = actions.published
    assert topic == "errors/t1"
    assert report["ruleName"] == "r1" and report["topic"] == "edge/t1/m"
    assert base64.b64decode(report["base64OriginalPayload"]) == b'{"n": 1}'
    assert report["failures"] == [
        {"failedAction": "LambdaAction", "failedResource": FN, "errorMessage": "denied on purpose"}
    ]


def test_failed_action_without_error_action_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    rules = {"r1": _rule("SELECT * FROM 'a'", [{"lambda": {"functionArn": FN}}, {"sns": {"targetArn": "t"}}])}
    actions = FakeActions(fail_invoke=True)
    Engine(actions, lambda: rules).handle("a", b"{}")
    assert actions.published == []
    assert "no errorAction" in caplog.text and "denied on purpose" in caplog.text
    assert "sns action is not emulated" in caplog.text


def test_substitute() -> None:
    message = Message("edge/t1/m", {"a": {"b": "x"}})
    assert substitute("out/${topic(2)}/${a.b}/${missing}/end", message) == "out/t1/x//end"
    assert substitute("no/template", message) == "no/template"
    assert substitute("open/${topic()", message) == "open/${topic()"


# -- the provider's own checks ---------------------------------------------------------------
def _request(method: str, path: str, body: Any, service: str = "iot") -> Request:
    auth = f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request(
        EnvironBuilder(method=method, path=path, data=data, headers={"Authorization": auth}).get_environ()
    )


def test_provider_refuses_rules_aws_would_refuse(tmp_path: Any) -> None:
    provider = IotRulesProvider(ServerContext(state_dir=tmp_path))
    good = {"sql": "SELECT * FROM 'edge/+/monitoring'", "actions": []}
    assert provider.handle(_request("POST", "/rules/ok_rule", good)) is None  # on to moto
    bad = provider.handle(
        _request("PATCH", "/rules/ok_rule", {**good, "sql": "SELECT * FROM 'a' WHERE a != 1"})
    )
    assert bad is not None and bad.status_code == 400
    assert (
        bad.headers["x-amzn-ErrorType"] == "SqlParseException"
        and "use <>" in json.loads(bad.get_data())["message"]
    )
    named = provider.handle(_request("POST", "/rules/bad-name", good))
    assert named is not None and named.headers["x-amzn-ErrorType"] == "InvalidRequestException"
    garbled = provider.handle(_request("POST", "/rules/ok_rule", b"{nope"))
    assert garbled is not None and "not JSON" in json.loads(garbled.get_data())["message"]
    # not a topic-rule write: left alone
    assert provider.handle(_request("POST", "/rules/ok_rule/enable", {})) is None
    assert provider.handle(_request("POST", "/rules/x", {"sql": 1}, service="events")) is None


class FakeLambda:
    class exceptions:  # botocore's shape: client.exceptions.ResourceNotFoundException
        class ResourceNotFoundException(Exception):
            response: ClassVar[dict[str, Any]] = {
                "Error": {"Message": "No policy is associated with the given resource."}
            }

    def __init__(self, policy: dict[str, Any] | None) -> None:
        self.policy = policy
        self.invoked: list[dict[str, Any]] = []

    def get_policy(self, FunctionName: str) -> dict[str, Any]:
        if self.policy is None:
            raise self.exceptions.ResourceNotFoundException()
        return {"Policy": json.dumps(self.policy)}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.invoked.append(kwargs)
        return {"StatusCode": 202}


def _statement(source_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "iot",
                "Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"},
                "Action": "lambda:InvokeFunction",
                "Resource": FN,
                "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
            }
        ],
    }


@pytest.mark.parametrize(
    ("mode", "policy", "invoked", "refused"),
    [
        ("enforce", _statement(RULE_ARN), True, False),
        ("enforce", _statement("arn:aws:iot:us-east-1:123456789012:rule/other"), False, True),
        ("enforce", None, False, True),
        ("audit", None, True, False),
        ("off", None, True, False),
    ],
)
def test_lambda_action_needs_the_functions_resource_policy(
    tmp_path: Any, mode: str, policy: Any, invoked: bool, refused: bool
) -> None:
    ctx = ServerContext(state_dir=tmp_path, iam=SimpleNamespace(mode=SimpleNamespace(value=mode)))
    provider = IotRulesProvider(ctx)
    provider._lambda = FakeLambda(policy)
    rule = _rule("SELECT * FROM 'a'", [{"lambda": {"functionArn": FN}}])
    if refused:
        with pytest.raises(ActionFailed, match=r"iot\.amazonaws\.com is not allowed"):
            provider.invoke(FN, b"{}", rule)
    else:
        provider.invoke(FN, b'{"n": 1}', rule)
    assert bool(provider._lambda.invoked) is invoked
    if invoked:
        assert provider._lambda.invoked == [
            {"FunctionName": FN, "InvocationType": "Event", "Payload": b'{"n": 1}'}
        ]
