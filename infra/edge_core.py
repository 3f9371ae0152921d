"""Constructs of the simulated edge device: an EC2 instance running the Greengrass nucleus.

The instance provisions itself on first boot with the nucleus installer's automatic provisioning
(``--provision true``). Everything the installer would otherwise create with broad IAM rights
(token exchange role and its ``<role>Access`` policy, role alias, IoT policies) is created here
first, with the exact names the installer looks up, so the instance role only needs to *read*
those and to create its own thing and certificate.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.permissions import log_group_writer

#: Name prefix the installer gives the IoT policy allowing ``iot:AssumeRoleWithCertificate``
#: (``DeviceProvisioningHelper.IOT_ROLE_POLICY_NAME_PREFIX`` in the nucleus source).
TES_CERT_POLICY_PREFIX = "GreengrassTESCertificatePolicy"

#: Where the nucleus installer is downloaded from (the documented release location).
NUCLEUS_RELEASES = "https://d2s8p88vqu9w66.cloudfront.net/releases"

THING_NAME_VAR = "${iot:Connection.Thing.ThingName}"


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


class TokenExchange(Construct):
    """The token exchange role Greengrass components get AWS credentials from, and its role alias.

    Components (the model and inference components) only need to download their artifacts from
    the artifact bucket's ``components/`` prefix and to write Greengrass logs.

    Attributes:
        role: the token exchange role (trusted by ``credentials.iot.amazonaws.com``).
        access_policy: ``<role name>Access``, the managed policy the installer expects on the role.
        role_alias: the IoT role alias devices exchange their certificate against.
        role_alias_arn: its ARN.
        cert_policy: the IoT policy allowing ``iot:AssumeRoleWithCertificate`` on the alias.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        role_alias_name: str,
        artifact_bucket: s3.IBucket,
        components_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com"),
            description="Greengrass token exchange role of the mlops-edge core devices",
        )
        self.access_policy = iam.ManagedPolicy(
            self,
            "Access",
            managed_policy_name=f"{role_name}Access",
            description="What Greengrass components on mlops-edge core devices may do in AWS",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="DownloadComponentArtifacts",
                    actions=["s3:GetObject"],
                    resources=[artifact_bucket.arn_for_objects(f"{components_prefix}*")],
                ),
                iam.PolicyStatement(
                    sid="LocateArtifactBucket",
                    actions=["s3:GetBucketLocation"],
                    resources=[artifact_bucket.bucket_arn],
                ),
                log_group_writer(stack, "/aws/greengrass/*", sid="GreengrassLogs"),
            ],
        )
        self.role_alias = iot.CfnRoleAlias(
            self,
            "RoleAlias",
            role_alias=role_alias_name,
            role_arn=self.role.role_arn,
            credential_duration_seconds=3600,
        )
        self.role_alias_arn = stack.format_arn(
            service="iot", resource="rolealias", resource_name=role_alias_name
        )
        self.cert_policy = iot.CfnPolicy(
            self,
            "CertificatePolicy",
            policy_name=f"{TES_CERT_POLICY_PREFIX}{role_alias_name}",
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iot:AssumeRoleWithCertificate",
                        "Resource": self.role_alias_arn,
                    }
                ],
            },
        )


class CoreThingPolicy(Construct):
    """The IoT policy attached to each core device's certificate.

    MQTT access is scoped with ``${iot:Connection.Thing.ThingName}``: a device may only use its
    own ``edge/<thing>/...`` and ``$aws/things/<thing>/...`` topics, and only connect with its own
    thing name as client id while its certificate is attached to that thing. The Greengrass data
    plane (component resolution, artifact URLs, deployment configuration) is called over HTTPS,
    where thing policy variables are not available, so those actions are listed one by one on
    ``*`` rather than granted as ``greengrass:*``.

    Caveat: the nucleus opens extra MQTT connections (client id ``<thing>#2`` ...) only past 50
    subscriptions; this policy does not allow them, which this pipeline's components never need.

    Attributes:
        policy: the ``AWS::IoT::Policy``.
        policy_name: its name (passed to the installer as ``--thing-policy-name``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, policy_name: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=resource, resource_name=name)

        own_topics = [f"edge/{THING_NAME_VAR}/*", f"$aws/things/{THING_NAME_VAR}/*"]
        self.policy_name = policy_name
        self.policy = iot.CfnPolicy(
            self,
            "Policy",
            policy_name=policy_name,
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ConnectAsOwnThing",
                        "Effect": "Allow",
                        "Action": "iot:Connect",
                        "Resource": arn("client", THING_NAME_VAR),
                        "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                    },
                    {
                        "Sid": "OwnTopics",
                        "Effect": "Allow",
                        "Action": ["iot:Publish", "iot:Receive"],
                        "Resource": [arn("topic", t) for t in own_topics],
                    },
                    {
                        "Sid": "OwnTopicFilters",
                        "Effect": "Allow",
                        "Action": "iot:Subscribe",
                        "Resource": [arn("topicfilter", t) for t in own_topics],
                    },
                    {
                        "Sid": "GreengrassDataPlane",
                        "Effect": "Allow",
                        "Action": [
                            "greengrass:GetComponentVersionArtifact",
                            "greengrass:ResolveComponentCandidates",
                            "greengrass:GetDeploymentConfiguration",
                            "greengrass:ListThingGroupsForCoreDevice",
                        ],
                        "Resource": "*",
                    },
                ],
            },
        )


class CoreDeviceInstance(Construct):
    """The Amazon Linux 2023 instance that installs and provisions the Greengrass nucleus.

    No key pair and no ingress: shell access is through SSM Session Manager. IMDSv2 is required
    and the root volume is encrypted.

    Attributes:
        instance: the EC2 instance.
        role: its instance role (provisioning + SSM only; see :meth:`_grant_provisioning`).
        security_group: egress-only security group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        instance_type: str,
        thing_name: str,
        thing_group_name: str,
        thing_policy_name: str,
        tes_role_name: str,
        tes_role_alias_name: str,
        tes_cert_policy_name: str,
        nucleus_version: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="mlops-edge simulated core device: Greengrass automatic provisioning and SSM",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self._grant_provisioning(
            thing_name=thing_name,
            thing_group_name=thing_group_name,
            policy_names=[thing_policy_name, tes_cert_policy_name],
            tes_role_name=tes_role_name,
            tes_role_alias_name=tes_role_alias_name,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="mlops-edge core device: no inbound, HTTPS/MQTT out to AWS",
            allow_all_outbound=True,
        )
        self.instance = ec2.Instance(
            self,
            "Instance",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            associate_public_ip_address=True,
            instance_type=ec2.InstanceType(instance_type),
            machine_image=ec2.MachineImage.latest_amazon_linux2023(),
            role=self.role,
            security_group=self.security_group,
            require_imdsv2=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        16,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=ec2.UserData.custom(
                nucleus_user_data(
                    region=Aws.REGION,
                    thing_name=thing_name,
                    thing_group_name=thing_group_name,
                    thing_policy_name=thing_policy_name,
                    tes_role_name=tes_role_name,
                    tes_role_alias_name=tes_role_alias_name,
                    nucleus_version=nucleus_version,
                )
            ),
            user_data_causes_replacement=True,
        )

    def _grant_provisioning(
        self,
        *,
        thing_name: str,
        thing_group_name: str,
        policy_names: list[str],
        tes_role_name: str,
        tes_role_alias_name: str,
    ) -> None:
        """What the nucleus installer calls with ``--provision true``, given that the stack already
        created the role alias, the IoT policies and the ``<role>Access`` policy (read from
        ``DeviceProvisioningHelper`` in the nucleus source):

        - ``iot:GetPolicy`` on the two IoT policies: it looks each up and would create it if missing;
        - ``iot:CreateKeysAndCertificate`` (no resource-level permission exists) for the device
          certificate, ``iot:AttachPolicy`` on certificates to attach both policies to it;
        - ``iot:CreateThing``/``iot:AttachThingPrincipal`` on this one thing name;
        - ``iot:CreateThingGroup`` (called even when the group exists; it then reuses it) and
          ``iot:AddThingToThingGroup`` on this one group and thing;
        - ``iot:DescribeEndpoint`` (no resource-level permission) for the data and credentials
          endpoints written to the nucleus config;
        - ``iot:DescribeRoleAlias`` on the alias: found, so no role or alias is created;
        - ``iam:GetPolicy`` on ``<role>Access`` (AWS-managed and account ARNs: it tries both) and
          ``iam:AttachRolePolicy`` of exactly that policy to exactly the token exchange role.

        After first boot these rights are unused; detach them if the instance should keep none.
        """
        stack = Stack.of(self)

        def iot_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=resource, resource_name=name)

        access_policy_name = f"{tes_role_name}Access"
        account_policy_arn = stack.format_arn(
            service="iam", region="", resource="policy", resource_name=access_policy_name
        )
        statements = [
            iam.PolicyStatement(
                sid="ReadPreparedIotPolicies",
                actions=["iot:GetPolicy"],
                resources=[iot_arn("policy", name) for name in policy_names],
            ),
            iam.PolicyStatement(
                sid="CreateDeviceCertificate",
                actions=["iot:CreateKeysAndCertificate", "iot:DescribeEndpoint"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="AttachPoliciesToDeviceCertificate",
                actions=["iot:AttachPolicy"],
                resources=[iot_arn("cert", "*")],
            ),
            iam.PolicyStatement(
                sid="RegisterThing",
                actions=["iot:CreateThing", "iot:AttachThingPrincipal"],
                resources=[iot_arn("thing", thing_name)],
            ),
            iam.PolicyStatement(
                sid="JoinThingGroup",
                actions=["iot:CreateThingGroup", "iot:AddThingToThingGroup"],
                resources=[iot_arn("thinggroup", thing_group_name), iot_arn("thing", thing_name)],
            ),
            iam.PolicyStatement(
                sid="FindRoleAlias",
                actions=["iot:DescribeRoleAlias"],
                resources=[iot_arn("rolealias", tes_role_alias_name)],
            ),
            iam.PolicyStatement(
                sid="FindTokenExchangeAccessPolicy",
                actions=["iam:GetPolicy"],
                resources=[
                    account_policy_arn,
                    f"arn:{Aws.PARTITION}:iam::aws:policy/{access_policy_name}",
                ],
            ),
            iam.PolicyStatement(
                sid="AttachTokenExchangeAccessPolicy",
                actions=["iam:AttachRolePolicy"],
                resources=[
                    stack.format_arn(service="iam", region="", resource="role", resource_name=tes_role_name)
                ],
                conditions={"ArnEquals": {"iam:PolicyARN": account_policy_arn}},
            ),
        ]
        policy = iam.Policy(self, "ProvisioningPolicy", statements=statements)
        self.role.attach_inline_policy(policy)
        self.provisioning_policy = policy


def nucleus_user_data(
    *,
    region: str,
    thing_name: str,
    thing_group_name: str,
    thing_policy_name: str,
    tes_role_name: str,
    tes_role_alias_name: str,
    nucleus_version: str,
) -> str:
    """The first-boot script: Java + Python 3.11, then the nucleus with automatic provisioning.

    Amazon Linux 2023's ``python3`` is 3.9, too old for the inference component's pinned numpy
    and onnxruntime; ``python3.11`` is put first on the service PATH as ``python3`` (in
    /usr/local/bin, so dnf keeps its own interpreter). Idempotent: a second run does nothing
    once the nucleus is installed.
    """
    archive = (
        "greengrass-nucleus-latest.zip"
        if nucleus_version == "latest"
        else f"greengrass-{nucleus_version}.zip"
    )
    return "\n".join(
        [
            "#!/bin/bash",
            "set -euxo pipefail",
            "exec > >(tee -a /var/log/mlops-edge-setup.log) 2>&1",
            "if systemctl list-unit-files greengrass.service >/dev/null 2>&1 && [ -d /greengrass/v2 ]; then",
            "  echo 'Greengrass already installed'; exit 0",
            "fi",
            "dnf install -y java-17-amazon-corretto-headless python3.11 python3.11-pip unzip",
            "ln -sf /usr/bin/python3.11 /usr/local/bin/python3",
            "ln -sf /usr/bin/pip3.11 /usr/local/bin/pip3",
            "mkdir -p /opt/greengrass-installer",
            f"curl -fsSL --retry 5 -o /opt/greengrass-installer/nucleus.zip {NUCLEUS_RELEASES}/{archive}",
            "unzip -q -o /opt/greengrass-installer/nucleus.zip -d /opt/greengrass-installer/GreengrassInstaller",
            # The inference component's accessControl and topics use {iot:thingName}; the nucleus
            # interpolates recipe variables in component configuration only when told to.
            "cat > /opt/greengrass-installer/config.yaml <<'EOF'",
            "services:",
            "  aws.greengrass.Nucleus:",
            "    configuration:",
            "      interpolateComponentConfiguration: true",
            "EOF",
            'java -Droot="/greengrass/v2" -Dlog.store=FILE \\',
            "  -jar /opt/greengrass-installer/GreengrassInstaller/lib/Greengrass.jar \\",
            f"  --aws-region {region} \\",
            f"  --thing-name {thing_name} \\",
            f"  --thing-group-name {thing_group_name} \\",
            f"  --thing-policy-name {thing_policy_name} \\",
            f"  --tes-role-name {tes_role_name} \\",
            f"  --tes-role-alias-name {tes_role_alias_name} \\",
            "  --component-default-user ggc_user:ggc_group \\",
            "  --provision true \\",
            "  --init-config /opt/greengrass-installer/config.yaml \\",
            "  --setup-system-service true",
            "",
        ]
    )
