"""Device presence: an AWS IoT topic rule that keeps each client's lifecycle events in S3.

AWS IoT publishes ``$aws/events/presence/connected|disconnected/<clientId>`` when a client
connects or goes away (developerguide/life-cycle-events.html), and warns that these messages
"might be sent out of order" and duplicated; IoT also runs a rule's actions for different messages
concurrently. CheckDeployment needs each unfinished device's *newest* event to say it is offline,
and when it went. So the rule's s3 action writes every event to its own object,
``<state prefix>presence/<clientId>/<versionNumber>-<timestamp>-<eventType>.json``
(``lambdas.core.presence.EVENT_KEY_TEMPLATE``; ``${...}`` are substitution templates over the
event's own fields): a late older event cannot overwrite a newer one, a duplicate rewrites its own
key, and the reader orders them by ``versionNumber``/``timestamp`` as AWS prescribes. IoT acts as a
role only it may assume (``aws:SourceAccount``/``aws:SourceArn`` against the confused deputy) that
may put objects under that prefix and nowhere else.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

from infra.storage import PREFIXES, ArtifactStore
from lambdas.core.presence import EVENT_KEY_TEMPLATE, PRESENCE_FOLDER

#: where the rule writes, under the state prefix; CheckDeployment lists ``<this><thing>/``
PRESENCE_PREFIX = f"{PREFIXES['state']}{PRESENCE_FOLDER}"
PRESENCE_SQL = "SELECT * FROM '$aws/events/presence/+/+'"


def rule_name(prefix: str) -> str:
    """A topic rule name (``^[a-zA-Z0-9_]+$``) from the deployment's name prefix."""
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_presence")[:128]


class DevicePresence(Construct):
    """The presence topic rule and the role its s3 action runs as.

    Attributes:
        rule: the ``AWS::IoT::TopicRule``.
        role: the role IoT assumes to put the event objects.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, store: ArtifactStore, name_prefix: str
    ) -> None:
        super().__init__(scope, construct_id)
        name = rule_name(name_prefix)
        rule_arn = Stack.of(self).format_arn(service="iot", resource="rule", resource_name=name)
        self.role = iam.Role(
            self,
            "Role",
            description="AWS IoT's presence rule: writes each client's lifecycle events to S3",
            assumed_by=iam.ServicePrincipal(
                "iot.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": rule_arn},
                },
            ),
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[store.bucket.arn_for_objects(f"{PRESENCE_PREFIX}*")]
            )
        )
        self.rule = iot.CfnTopicRule(
            self,
            "Rule",
            rule_name=name,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=PRESENCE_SQL,
                aws_iot_sql_version="2016-03-23",
                description="Each device's connect/disconnect events, one object each, for CheckDeployment's offline devices",
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        s3=iot.CfnTopicRule.S3ActionProperty(
                            bucket_name=store.bucket.bucket_name,
                            key=PRESENCE_PREFIX + EVENT_KEY_TEMPLATE,
                            role_arn=self.role.role_arn,
                        )
                    )
                ],
            ),
        )
        # the rule may only be created once its role can act (IoT checks nothing, but a first event
        # would fail): the policy before the rule
        self.rule.node.add_dependency(self.role)
