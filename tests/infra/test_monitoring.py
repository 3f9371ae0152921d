"""Drift monitoring in the pipeline stack: the IoT rule invoking MonitorDrift (and only IoT, from that
rule, may), the DISABLED retraining rule starting the state machine with the event's retraining
input, and least privilege for the rule's role, Promote's switch and MonitorDrift."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .test_permissions import _role, grants_by_role

pytestmark = pytest.mark.infra


def _of_type(synth, kind: str) -> dict[str, dict[str, Any]]:
    return synth.resources("pipeline", kind)


def test_topic_rule_invokes_monitor_drift_and_only_iot_from_that_rule_may(synth) -> None:
    (rule,) = [
        r
        for r in _of_type(synth, "AWS::IoT::TopicRule").values()
        if r["Properties"]["RuleName"].endswith("_monitoring")
    ]
    payload = rule["Properties"]["TopicRulePayload"]
    assert payload["Sql"] == "SELECT * FROM 'edge/+/monitoring'" and payload["RuleDisabled"] is False
    ((action,),) = [a.values() for a in payload["Actions"]]
    function_id = action["FunctionArn"]["Fn::GetAtt"][0]
    function = synth.templates["pipeline"]["Resources"][function_id]["Properties"]
    assert function["FunctionName"].endswith("monitor-drift")
    assert function["ImageConfig"]["Command"] == ["lambdas.monitor_drift.handler"]
    (permission,) = [
        p["Properties"]
        for p in _of_type(synth, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert permission["Principal"] == "iot.amazonaws.com"
    assert rule["Properties"]["RuleName"] in json.dumps(permission["SourceArn"])
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_retraining_rule_is_disabled_and_starts_the_pipeline_with_the_retraining_input(synth) -> None:
    rules = _of_type(synth, "AWS::Events::Rule").values()
    (rule,) = [
        r["Properties"]
        for r in rules
        if r["Properties"]["EventPattern"]["source"] == ["mlops-edge.monitoring"]
    ]
    assert rule["State"] == "DISABLED"
    assert rule["EventPattern"]["detail-type"] == ["Model drift detected"]
    assert rule["EventPattern"]["detail"]["scope"] == ["fleet"]
    (target,) = rule["Targets"]
    (machine,) = _of_type(synth, "AWS::StepFunctions::StateMachine")
    assert target["Arn"] == {"Ref": machine} and target["InputPath"] == "$.detail.retraining_input"
    role = target["RoleArn"]["Fn::GetAtt"][0]
    grants = grants_by_role(synth.templates["pipeline"])[role]
    assert set(grants) == {"states:StartExecution"}
    assert grants["states:StartExecution"] == [json.dumps({"Ref": machine})]
    # Promote may switch this rule and no other; its name reaches Promote through the environment
    promote = grants_by_role(synth.templates["pipeline"])[_role(synth, "promote")]
    for action in ("events:EnableRule", "events:DisableRule"):
        (resource,) = promote[action]
        assert f"rule/{rule['Name']}" in resource
    functions = _of_type(synth, "AWS::Lambda::Function").values()
    assert all(
        f["Properties"]["Environment"]["Variables"]["MLOPS_EDGE_RETRAINING_RULE"] == rule["Name"]
        for f in functions
    )


def test_monitor_drift_holds_only_what_it_calls(synth) -> None:
    grants = grants_by_role(synth.templates["pipeline"])[_role(synth, "monitor_drift")]
    actions = {a for a in grants if not a.startswith(("logs:", "xray:"))}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "events:PutEvents"}
    assert all("state/monitoring/*/alerts/*" in r for r in grants["s3:DeleteObject"])
    assert all("state/monitoring/*" in r or "datasets/retraining/*" in r for r in grants["s3:PutObject"])
    (bus,) = grants["events:PutEvents"]
    assert "event-bus/default" in bus
