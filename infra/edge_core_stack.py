"""Edge core stack: an EC2 instance standing in for a Greengrass core device of the fleet."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import common
from infra.device_identity import TES_CERT_POLICY_PREFIX, CoreThingPolicy, TokenExchange
from infra.edge_core import CoreDeviceInstance
from infra.edge_network import EdgeNetwork
from infra.storage import PREFIXES
from pipeline.config.deployment import EdgeConfig


class EdgeCoreStack(Stack):
    """VPC, token exchange role + alias, IoT policies and the self-provisioning core instance.

    Attributes:
        network, token_exchange, thing_policy, core: the constructs, in dependency order.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EdgeConfig,
        artifact_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = common.retention(config.log_retention_days)
        self.network = EdgeNetwork(self, "Network", log_retention=retention)
        self.token_exchange = TokenExchange(
            self,
            "TokenExchange",
            role_name=config.tes_role_name,
            role_alias_name=config.tes_role_alias_name,
            artifact_bucket=artifact_bucket,
            components_prefix=PREFIXES["components"],
        )
        self.thing_policy = CoreThingPolicy(self, "ThingPolicy", policy_name=config.thing_policy_name)
        self.core = CoreDeviceInstance(
            self,
            "Core",
            vpc=self.network.vpc,
            instance_type=config.instance_type,
            thing_name=config.thing_name,
            thing_group_name=config.thing_group_name,
            thing_policy_name=config.thing_policy_name,
            tes_role_name=config.tes_role_name,
            tes_role_alias_name=config.tes_role_alias_name,
            tes_cert_policy_name=f"{TES_CERT_POLICY_PREFIX}{config.tes_role_alias_name}",
            nucleus_version=config.nucleus_version,
            ami_id=config.ami_id,
        )
        # The installer looks these up by name on first boot: they must exist before it runs.
        for prerequisite in (
            self.token_exchange.role_alias,
            self.token_exchange.cert_policy,
            self.token_exchange.access_policy,
            self.thing_policy.policy,
            self.core.provisioning_policy,
        ):
            self.core.instance.node.add_dependency(prerequisite)

        CfnOutput(self, "CoreInstanceId", value=self.core.instance.instance_id)
        CfnOutput(self, "CoreThingName", value=config.thing_name)
        CfnOutput(self, "TokenExchangeRoleAlias", value=config.tes_role_alias_name)
        CfnOutput(
            self,
            "SessionCommand",
            value=f"aws ssm start-session --target {self.core.instance.instance_id}",
            description="Shell on the core device (no SSH): then `sudo tail -f /greengrass/v2/logs/greengrass.log`",
        )

    @property
    def availability_zones(self) -> list[str]:
        """Two AZs resolved by CloudFormation (``Fn::GetAZs``), never by a context lookup.

        An account-bound stack would otherwise ask the CLI to look the region's AZs up (with the
        lookup role and credentials) as soon as the VPC spreads over them; this keeps ``cdk synth``
        offline and identical with or without an account.
        """
        return [Fn.select(index, Fn.get_azs()) for index in range(2)]
