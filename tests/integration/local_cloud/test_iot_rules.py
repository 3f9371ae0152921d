"""The local IoT rules engine on the real path: a device publishes, a topic rule invokes a function.

One test on the shared local cloud. Rules are created with the IoT API (SQL the engine cannot run
is refused with ``SqlParseException``); a provisioned device publishes on its own topic with its
own certificate; the function, allowed by its resource policy to be invoked by
``iot.amazonaws.com`` for the first rule only, logs the SELECT result (``topic()``, ``topic(2)``
in it). A message failing WHERE invokes nothing, nor does one sent while the rule is disabled. A
second rule on the same filter names the same function without that permission: IoT may not
invoke it (IAM enforce), so its errorAction republishes AWS's error report, which the pipeline's
identity receives. "Nothing ran" is read from the function's logs after a later message that
did run, never from a bare sleep.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.integration.local_cloud.conftest import handler_zip, wait_until
from tests.integration.local_cloud.mqtt_client import MqttTestClient

pytestmark = pytest.mark.integration
OK = (0, 16)  # PUBACK: success, or no subscribers


def _events(logs, group: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    try:
        found = logs.filter_log_events(logGroupName=group)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [json.loads(e["message"][len("EVENT ") :]) for e in found if e["message"].startswith("EVENT ")]


def _function(local_cloud, role_arn: str, name: str, rule_arn: str) -> str:  # type: ignore[no-untyped-def]
    lam = local_cloud.client("lambda")
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role_arn,
        Handler="rule_handlers.record",
        Code={"ZipFile": handler_zip()},
        Timeout=10,
    )["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="iot",
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=rule_arn,
    )
    return str(arn)


def _pipeline_client(local_cloud) -> MqttTestClient:  # type: ignore[no-untyped-def]
    ident, mqtt = local_cloud.pipeline_identity, local_cloud.mqtt
    client_id = "mlops-edge-tool-rules-" + uuid.uuid4().hex[:6]
    return MqttTestClient(mqtt.host, mqtt.port, ident.ca_path, ident.cert_path, ident.key_path, client_id)


def test_rule_invokes_function_for_matching_device_messages(
    local_cloud, lambda_role_arn, provision_device
) -> None:  # type: ignore[no-untyped-def]
    suffix = uuid.uuid4().hex[:8]
    iot, logs = local_cloud.client("iot"), local_cloud.client("logs")
    name, rule, denied = f"monitor-{suffix}", f"monitoring_{suffix}", f"denied_{suffix}"
    arn = _function(
        local_cloud, lambda_role_arn, name, f"arn:aws:iot:{iot.meta.region_name}:123456789012:rule/{rule}"
    )
    with pytest.raises(ClientError) as refused:
        iot.create_topic_rule(ruleName=rule, topicRulePayload={"sql": "SELECT * FROM edge", "actions": []})
    assert refused.value.response["Error"]["Code"] == "SqlParseException"
    sql = "SELECT *, topic() AS topic, topic(2) AS thing FROM 'edge/+/monitoring' WHERE window.rows > 0"
    lambda_action = {"lambda": {"functionArn": arn}}
    iot.create_topic_rule(ruleName=rule, topicRulePayload={"sql": sql, "actions": [lambda_action]})
    errors = f"errors/{suffix}"
    iot.create_topic_rule(
        ruleName=denied,
        topicRulePayload={
            "sql": "SELECT n FROM 'edge/+/monitoring' WHERE n = 2",
            "actions": [lambda_action],
            "errorAction": {"republish": {"topic": errors, "roleArn": lambda_role_arn}},
        },
    )
    dev = provision_device()
    group, topic = f"/aws/lambda/{name}", f"edge/{dev.thing_name}/monitoring"
    client = MqttTestClient(
        dev.mqtt_host, dev.mqtt_port, dev.ca_path, dev.cert_path, dev.key_path, dev.thing_name
    )
    watcher = _pipeline_client(local_cloud)
    try:
        assert watcher.subscribe(errors) == 1
        assert client.publish(topic, {"window": {"rows": 0}, "n": 1}) in OK  # fails WHERE
        second = {"window": {"rows": 5}, "n": 2}
        assert client.publish(topic, second) in OK
        got = wait_until(lambda: _events(logs, group), timeout=60)
        assert got == [{**second, "topic": topic, "thing": dev.thing_name}]
        if os.environ.get("MLOPS_EDGE_IAM", "enforce") == "enforce":
            report = watcher.wait_for(errors, timeout=30)
            assert report["ruleName"] == denied and report["topic"] == topic
            assert json.loads(base64.b64decode(report["base64OriginalPayload"])) == second
            assert [f["failedAction"] for f in report["failures"]] == ["LambdaAction"]
            assert "iot.amazonaws.com is not allowed" in report["failures"][0]["errorMessage"]
        iot.disable_topic_rule(ruleName=rule)
        assert client.publish(topic, {"window": {"rows": 7}, "n": 3}) in OK
        iot.enable_topic_rule(ruleName=rule)
        assert client.publish(topic, {"window": {"rows": 9}, "n": 4}) in OK
        wait_until(lambda: len(_events(logs, group)) >= 2, timeout=60)
        # the rows=0 message (WHERE false) and the n=3 one (rule disabled) never ran it; the
        # denied rule never did either
        assert sorted(e["n"] for e in _events(logs, group)) == [2, 4]
    finally:
        client.close()
        watcher.close()
        for name_ in (rule, denied):
            with contextlib.suppress(iot.exceptions.ResourceNotFoundException):
                iot.delete_topic_rule(ruleName=name_)
