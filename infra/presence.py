"""Device presence: an AWS IoT topic rule that keeps each client's last lifecycle event in S3.

AWS IoT publishes ``$aws/events/presence/connected|disconnected/<clientId>`` when a client
connects or goes away (developerguide/life-cycle-events.html). CheckDeployment needs the *last*
event of each unfinished device to say it is offline, and when it went; a rule with an s3 action
gives that with no code to run: one object per client, ``<state prefix>presence/<clientId>.json``,
overwritten by each event (``${clientId}`` is a substitution template over the event's own
field). IoT acts as a role only it may assume (``aws:SourceAccount``/``aws:SourceArn`` against
the confused deputy) that may put objects under that prefix and nowhere else.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

from infra.storage import PREFIXES, ArtifactStore

#: where the rule writes, under the state prefix; CheckDeployment reads ``<this><thing>.json``
PRESENCE_PREFIX = f"{PREFIXES['state']}presence/"
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
            description="AWS IoT's presence rule: writes each client's last lifecycle event to S3",
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
                description="Each device's last connect/disconnect, for CheckDeployment's offline devices",
                rule_disabled=False,
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        s3=iot.CfnTopicRule.S3ActionProperty(
                            bucket_name=store.bucket.bucket_name,
                            key=PRESENCE_PREFIX + "${clientId}.json",
                            role_arn=self.role.role_arn,
                        )
                    )
                ],
            ),
        )
        # the rule may only be created once its role can act (IoT checks nothing, but a first event
        # would fail): the policy before the rule
        self.rule.node.add_dependency(self.role)
