"""The core device's network: a VPC built without lookups, public subnets only, with flow logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class EdgeNetwork(Construct):
    """A VPC for the core device, built without lookups, with flow logs.

    Public subnets only and no NAT gateway: the device needs outbound HTTPS/MQTT to AWS IoT,
    Greengrass and S3 and nothing inbound, and a NAT gateway would cost more per month than the
    instance. The security group of the instance allows no ingress at all.

    Attributes:
        vpc: the VPC.
        flow_log_group: where VPC flow logs go (rejected and accepted traffic).
    """

    def __init__(self, scope: Construct, construct_id: str, *, log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.42.0.0/24"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=26)
            ],
            # Stripping the default security group's rules needs a custom-resource Lambda; the
            # default group is never attached to anything here, so it is left as is.
            restrict_default_security_group=False,
        )
        self.flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
