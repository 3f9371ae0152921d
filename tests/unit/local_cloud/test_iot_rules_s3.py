"""The rules engine's s3 action without an endpoint: the key's substitution templates, the put
through the Actions target, its refusals at create time and its failures reported to the
errorAction as ``S3Action``; the provider signs PutObject as the action's role."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from local_cloud.services.iot_rules.engine import ActionFailed, Engine, substitute
from local_cloud.services.iot_rules.exceptions import InvalidRequestException
from local_cloud.services.iot_rules.models import Rule, validate_payload
from local_cloud.services.iot_rules.provider import IotRulesProvider
from local_cloud.services.iot_rules.sql import Message, parse

ROLE = "arn:aws:iam::123456789012:role/presence"
PRESENCE = "$aws/events/presence/+/+"
KEY = "state/presence/${clientId}.json"


def _rule(actions: list[dict[str, Any]], error_action: dict[str, Any] | None = None) -> Rule:
    return Rule(
        "presence",
        "arn:aws:iot:us-east-1:123456789012:rule/presence",
        parse(f"SELECT * FROM '{PRESENCE}'"),
        tuple(actions),
        error_action,
        False,
    )


class Puts:
    def __init__(self, fail: bool = False) -> None:
        self.puts: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def invoke(self, function_arn: str, event: bytes, rule: Rule) -> None:
        raise AssertionError("no lambda action here")

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        self.published.append((topic, json.loads(payload)))

    def put_object(self, action: dict[str, str], payload: bytes, rule: Rule) -> None:
        if self.fail:
            raise ActionFailed(f"{action['bucketName']}/{action['key']}", "AccessDenied on purpose")
        self.puts.append((action, json.loads(payload)))


def _event(kind: str, client: str) -> tuple[str, dict[str, Any]]:
    body = {"clientId": client, "timestamp": 1_700_000_000_000, "eventType": kind, "versionNumber": 3}
    if kind == "disconnected":
        body["disconnectReason"] = "CONNECTION_LOST"
    return f"$aws/events/presence/{kind}/{client}", body


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (KEY, "state/presence/core-7.json"),
        ("state/${topic(4)}/${topic(5)}", "state/disconnected/core-7"),
        ("${eventType}-${versionNumber}.json", "disconnected-3.json"),
        ("no/templates.json", "no/templates.json"),
        ("state/${missing}x.json", "state/x.json"),  # Undefined: nothing, as IoT substitutes
        ("state/${unclosed", "state/${unclosed"),
    ],
)
def test_key_substitution(template: str, expected: str) -> None:
    topic, body = _event("disconnected", "core-7")
    assert substitute(template, Message(topic, body)) == expected


def test_the_s3_action_puts_the_select_result_at_the_substituted_key() -> None:
    puts = Puts()
    rule = _rule([{"s3": {"bucketName": "b-${topic(3)}", "key": KEY, "roleArn": ROLE}}])
    engine = Engine(puts, lambda: {"presence": rule})
    for kind, client in (("connected", "core-1"), ("disconnected", "core-2")):
        topic, body = _event(kind, client)
        assert engine.handle(topic, json.dumps(body).encode()) == 1
    (first, event1), (second, event2) = puts.puts
    assert (first["bucketName"], first["key"], first["roleArn"]) == (
        "b-presence",
        "state/presence/core-1.json",
        ROLE,
    )
    assert second["key"] == "state/presence/core-2.json" and event2["disconnectReason"] == "CONNECTION_LOST"
    assert event1["eventType"] == "connected"


def test_a_failed_put_goes_to_the_error_action_as_S3Action() -> None:
    puts = Puts(fail=True)
    rule = _rule(
        [{"s3": {"bucketName": "b", "key": KEY, "roleArn": ROLE}}],
        error_action={"republish": {"topic": "errors/presence", "roleArn": ROLE}},
    )
    topic, body = _event("connected", "core-1")
    Engine(puts, lambda: {"presence": rule}).handle(topic, json.dumps(body).encode())
    ((where, report),) = puts.published
    assert where == "errors/presence"
    (failure,) = report["failures"]
    assert failure == {
        "failedAction": "S3Action",
        "failedResource": "b/state/presence/core-1.json",
        "errorMessage": "AccessDenied on purpose",
    }


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ({"bucketName": "b", "roleArn": ROLE}, "s3.key is required"),
        ({"key": KEY, "roleArn": ROLE}, "s3.bucketName is required"),
        ({"bucketName": "b", "key": KEY}, "s3.roleArn is required"),
        (
            {"bucketName": "b", "key": KEY, "roleArn": ROLE, "cannedAcl": "everyone"},
            "cannedAcl must be one of",
        ),
    ],
)
def test_validate_payload_refuses_an_incomplete_s3_action(action: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidRequestException) as raised:
        validate_payload({"sql": f"SELECT * FROM '{PRESENCE}'", "actions": [{"s3": action}]})
    assert says in raised.value.message


class _Iam:
    """The authorizer's service_credentials: refuses (enforce) or hands out a session."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.asked: list[tuple[str, ...]] = []

    def service_credentials(self, role_arn: str, service: str, source_arn: str, name: str) -> Any:
        self.asked.append((role_arn, service, source_arn, name))
        if self.refuse:
            raise RuntimeError(f"{service} is not authorized to assume the role {role_arn}")
        return SimpleNamespace(access_key_id="ASIAEXAMPLE", secret_access_key="s", session_token="t")


def _provider(iam: _Iam, tmp_path: Any) -> IotRulesProvider:
    from local_cloud.context import ServerContext

    return IotRulesProvider(ServerContext(state_dir=tmp_path, port=1, iam=iam))


def test_the_provider_assumes_the_role_as_iot_before_it_puts(tmp_path: Any) -> None:
    iam = _Iam(refuse=True)
    provider = _provider(iam, tmp_path)
    action = {"bucketName": "b", "key": "state/presence/core-1.json", "roleArn": ROLE}
    with pytest.raises(ActionFailed) as raised:
        provider.put_object(action, b"{}", _rule([]))
    assert (
        "Failed to assume the role" in str(raised.value)
        and raised.value.resource == "b/state/presence/core-1.json"
    )
    assert iam.asked == [(ROLE, "iot.amazonaws.com", _rule([]).arn, "iot-rule-presence")]


def test_the_provider_signs_put_object_with_the_role_session(tmp_path: Any, monkeypatch: Any) -> None:
    provider = _provider(_Iam(refuse=False), tmp_path)
    sent: list[dict[str, Any]] = []
    client = provider._s3_client(ROLE, _rule([]))
    assert client._request_signer._credentials.access_key == "ASIAEXAMPLE"
    monkeypatch.setattr(client, "put_object", lambda **kw: sent.append(kw))
    provider.put_object({"bucketName": "b", "key": "k.json", "roleArn": ROLE}, b"{}", _rule([]))
    assert sent == [{"Bucket": "b", "Key": "k.json", "Body": b"{}"}]
    with pytest.raises(ActionFailed) as raised:
        provider.put_object({"bucketName": "", "key": "k.json", "roleArn": ROLE}, b"{}", _rule([]))
    assert "empty" in str(raised.value)
