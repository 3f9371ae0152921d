"""The presence topic rule: each lifecycle event to its own object under ``state/presence/<clientId>/``
(so a late or duplicated event cannot overwrite a newer one) as a role only IoT (this account, this
rule) may assume, allowed s3:PutObject under that prefix and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.infra


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_the_rule_writes_each_clients_events_apart_under_the_state_prefix(synth) -> None:
    template = synth.templates["pipeline"]
    (rule,) = [
        r
        for r in _of_type(template, "AWS::IoT::TopicRule").values()
        if r["Properties"]["RuleName"].endswith("_presence")
    ]
    payload = rule["Properties"]["TopicRulePayload"]
    assert payload["Sql"] == "SELECT * FROM '$aws/events/presence/+/+'"
    assert payload["RuleDisabled"] is False
    ((action,),) = [a.values() for a in payload["Actions"]]
    # one object per event, named by what the reader orders on (lambdas.core.presence)
    assert action["Key"] == "state/presence/${clientId}/${versionNumber}-${timestamp}-${eventType}.json"
    assert action["BucketName"]["Ref"].startswith("StorageArtifacts")
    role_id = action["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    assert "aws:SourceArn" in trust["Condition"]["ArnLike"]
    rule_name = rule["Properties"]["RuleName"]
    assert rule_name.endswith("_presence") and rule_name in str(trust["Condition"]["ArnLike"])
    policies = [
        r["Properties"]
        for r in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in statements] == ["s3:PutObject"]
    (resource,) = [s["Resource"] for s in statements]
    assert resource["Fn::Join"][1][-1] == "/state/presence/*"
    assert "StorageArtifacts" in resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
