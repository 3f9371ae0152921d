"""Drift monitoring in the pipeline stack: the IoT rule that runs MonitorDrift on every device window,
and the EventBridge rule that starts a retraining when the fleet drifts (docs/monitoring.md).

- ``SELECT * FROM 'edge/+/monitoring'`` with a lambda action: AWS IoT invokes the monitoring
  function asynchronously with each window; the function's resource policy lets only IoT, for this
  rule of this account, invoke it (``aws:SourceArn``/``aws:SourceAccount``).
- The retraining rule matches the function's drift event for the fleet scope when it carries a
  retraining input, and starts the state machine with ``$.detail.retraining_input`` as the
  execution input. It is created DISABLED: Promote enables or disables it per
  ``monitoring.retrain_on_drift`` of the execution that put the current model in service. Its
  role may only StartExecution on this state machine.

Both rule names are fixed from the deployment's name prefix, so the function environment can name
the retraining rule before the rule exists (Promote needs it; the rule needs the state machine,
which needs Promote: a name, not a reference, breaks that cycle).
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.common import Scope
from infra.storage import PREFIXES
from lambdas.core.retraining import EVENT_DETAIL_TYPE, EVENT_SOURCE, SNAPSHOT_PREFIX

#: The handler (``lambdas/monitor_drift.py``): a pipeline function, but no state of the machine.
MONITOR_FUNCTION = "monitor_drift"
MONITORING_SQL = "SELECT * FROM 'edge/+/monitoring'"
# Snapshots for retraining must be where the SageMaker role reads datasets (infra/training.py).
if not SNAPSHOT_PREFIX.startswith(PREFIXES["datasets"]):
    raise ValueError(f"{SNAPSHOT_PREFIX} must be under {PREFIXES['datasets']}")


def monitoring_rule_name(prefix: str) -> str:
    """The IoT topic rule's name (``^[a-zA-Z0-9_]+$``) from the deployment's name prefix."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_monitoring")[:128]


def retraining_rule_name(prefix: str) -> str:
    """The EventBridge rule's name (``[.\\-_A-Za-z0-9]+``, at most 64) from the name prefix."""
    return re.sub(r"[^.\-_A-Za-z0-9]", "-", f"{prefix}-retrain-on-drift")[:64]


def retraining_pattern() -> events.EventPattern:
    """The fleet's drift event, when it carries a retraining input with a training dataset."""
    return events.EventPattern(
        source=[EVENT_SOURCE],
        detail_type=[EVENT_DETAIL_TYPE],
        detail={"scope": ["fleet"], "retraining_input": {"dataset": {"train": [{"prefix": "s3://"}]}}},
    )


class DriftMonitoring(Construct):
    """The monitoring topic rule (invoking ``function``) and the retraining rule (DISABLED).

    Attributes:
        topic_rule: the ``AWS::IoT::TopicRule`` on ``edge/+/monitoring``.
        retraining_rule: the EventBridge rule that starts ``state_machine`` on fleet drift.
        role: the role the retraining rule's target starts executions with.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        state_machine: sfn.IStateMachine,
        name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        name = monitoring_rule_name(name_prefix)
        rule_arn = Stack.of(self).format_arn(service="iot", resource="rule", resource_name=name)
        self.topic_rule = iot.CfnTopicRule(
            self,
            "TopicRule",
            rule_name=name,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=MONITORING_SQL,
                aws_iot_sql_version="2016-03-23",
                description="Each device's monitoring window to the drift monitoring function",
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        lambda_=iot.CfnTopicRule.LambdaActionProperty(function_arn=function.function_arn)
                    )
                ],
            ),
        )
        permission = lambda_.CfnPermission(
            self,
            "IotInvoke",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="iot.amazonaws.com",
            source_arn=rule_arn,
            source_account=Aws.ACCOUNT_ID,
        )
        # the rule's first message must find the permission in place
        self.topic_rule.add_dependency(permission)
        self.retraining_rule = events.Rule(
            self,
            "RetrainingRule",
            rule_name=retraining_rule_name(name_prefix),
            description="Start a retraining of the pipeline when the fleet's data drifts from the "
            "training baseline (Promote enables it per monitoring.retrain_on_drift)",
            enabled=False,
            event_pattern=retraining_pattern(),
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        self.retraining_rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_event_path("$.detail.retraining_input"),
                role=self.role,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )


def retraining_rule_switch(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """Promote's grant: EnableRule/DisableRule on the retraining rule, and no other rule."""
    if scope.retraining_rule_name:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RetrainingRuleSwitch",
                actions=["events:EnableRule", "events:DisableRule"],
                resources=[scope.arn(node, "events", "rule", scope.retraining_rule_name)],
            )
        )


def monitor_drift_grants(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """MonitorDrift's grants (``infra/permissions.py`` lists it in its table).

    Under ``state/monitoring/``: read the baseline and context.json, write windows, recent windows,
    reports, violations and alert markers, delete alert markers when a scope clears (ListBucket
    there too, so a missing key is a 404, not a 403). A retraining snapshot copies ``datasets/``
    objects into ``datasets/retraining/`` (CopyObject reads the source and puts the target). Drift
    events go to the account's default event bus only.
    """
    store = scope.store
    monitoring, datasets = PREFIXES["monitoring"], PREFIXES["datasets"]
    statements = [
        (
            "MonitoringFiles",
            ["s3:GetObject", "s3:PutObject"],
            [store.bucket.arn_for_objects(f"{monitoring}*")],
        ),
        ("ClearDriftAlerts", ["s3:DeleteObject"], [store.bucket.arn_for_objects(f"{monitoring}*/alerts/*")]),
        ("ReadDatasets", ["s3:GetObject"], [store.bucket.arn_for_objects(f"{datasets}*")]),
        ("RetrainingSnapshots", ["s3:PutObject"], [store.bucket.arn_for_objects(f"{SNAPSHOT_PREFIX}*")]),
        ("DriftEvents", ["events:PutEvents"], [scope.arn(node, "events", "event-bus", "default")]),
    ]
    for sid, actions, resources in statements:
        role.add_to_principal_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ListMonitoringAndDatasets",
            actions=["s3:ListBucket"],
            resources=[store.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{monitoring}*", f"{datasets}*"]}},
        )
    )
