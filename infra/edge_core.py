"""The simulated edge device: an EC2 instance running the Greengrass nucleus.

The instance provisions itself on first boot with the nucleus installer's automatic provisioning
(``--provision true``). Everything the installer would otherwise create with broad IAM rights
(token exchange role and its ``<role>Access`` policy, role alias, IoT policies) is created first by
``infra/device_identity.py``, with the exact names the installer looks up, so the instance role
only needs to *read* those and to create its own thing and certificate.
"""

from __future__ import annotations

import re

import jsii
from aws_cdk import Acknowledgment, Annotations, Aws, Stack, Token, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nucleus_install import nucleus_user_data

#: An AMI id as EC2 writes it. A token (an SSM parameter CloudFormation resolves) or CDK's
#: ``dummy-value-for-...`` placeholder of a lookup not done yet is not one.
_AMI_ID = re.compile(r"ami-[0-9a-f]{8,17}")


@jsii.implements(ec2.IMachineImage)
class PinnedImage:
    """One AMI by id, whatever the region (the id must exist in the region deployed to)."""

    def __init__(self, ami_id: str) -> None:
        self.ami_id = ami_id

    def get_image(self, scope: Construct) -> ec2.MachineImageConfig:
        return ec2.MachineImageConfig(
            image_id=self.ami_id, os_type=ec2.OperatingSystemType.LINUX, user_data=ec2.UserData.for_linux()
        )


def core_machine_image(scope: Construct, ami_id: str) -> ec2.IMachineImage:
    """The core's AMI, fixed in the template so that a new Amazon Linux release never replaces
    (and re-provisions) the device on an unrelated deploy:

    - ``ami_id`` when set;
    - otherwise the latest Amazon Linux 2023 AMI, looked up *once* at synth (the CDK CLI reads the
      public SSM parameter and stores the answer in ``cdk.context.json``; later synths reuse it
      until ``cdk context --reset`` or a new ``ami_id``). That needs a concrete account and region,
      which every ``cdk deploy`` has;
    - an environment-agnostic synth cannot look anything up: it falls back to the SSM parameter
      CloudFormation resolves at each deploy, with a warning, since that template would move to
      every new AMI.
    """
    if ami_id:
        return PinnedImage(ami_id)
    stack = Stack.of(scope)
    if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region):
        Annotations.of(scope).add_warning_v2(
            "mlops-edge:ami-unpinned",
            "no account/region and no context 'ami_id': the core's AMI is read from SSM at every deploy, "
            "and each new Amazon Linux AMI would replace the device (see docs/deploy-aws.md)",
        )
        return ec2.MachineImage.latest_amazon_linux2023()
    return ec2.MachineImage.latest_amazon_linux2023(cached_in_context=True)


def pinned_ami_id(image_id: str) -> str:
    """``image_id`` when it is a literal AMI id fixed at synth, else ``""``."""
    return image_id if not Token.is_unresolved(image_id) and _AMI_ID.fullmatch(image_id) else ""


class CoreDeviceInstance(Construct):
    """The Amazon Linux 2023 instance that installs and provisions the Greengrass nucleus.

    No key pair and no ingress: shell access is through SSM Session Manager. IMDSv2 is required
    and the root volume is encrypted.

    Attributes:
        instance: the EC2 instance.
        ami_id: its AMI id when fixed at synth (``ami_id`` setting or the cached lookup), else ``""``.
        role: its instance role (provisioning + SSM only; see :func:`provisioning_statements`).
        provisioning_policy: the inline policy holding the provisioning rights.
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
        ami_id: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="mlops-edge simulated core device: Greengrass automatic provisioning and SSM",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self.provisioning_policy = iam.Policy(
            self,
            "ProvisioningPolicy",
            statements=provisioning_statements(
                Stack.of(self),
                thing_name=thing_name,
                thing_group_name=thing_group_name,
                policy_names=[thing_policy_name, tes_cert_policy_name],
                tes_role_name=tes_role_name,
                tes_role_alias_name=tes_role_alias_name,
            ),
        )
        self.role.attach_inline_policy(self.provisioning_policy)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="mlops-edge core device: no inbound, HTTPS/MQTT out to AWS",
            allow_all_outbound=True,
        )
        user_data = nucleus_user_data(
            region=Aws.REGION,
            thing_name=thing_name,
            thing_group_name=thing_group_name,
            thing_policy_name=thing_policy_name,
            tes_role_name=tes_role_name,
            tes_role_alias_name=tes_role_alias_name,
            nucleus_version=nucleus_version,
        )
        self.instance = self._instance(vpc, instance_type, core_machine_image(self, ami_id), user_data)
        self.ami_id = pinned_ami_id(self.instance.instance.image_id)
        if self.ami_id:
            Validations.of(self.instance).acknowledge(
                Acknowledgment(
                    id="CloudFormation-Validate::W9010",
                    reason="The AMI is pinned on purpose: a new AMI must not replace the provisioned core",
                )
            )

    def _instance(
        self, vpc: ec2.IVpc, instance_type: str, machine_image: ec2.IMachineImage, user_data: str
    ) -> ec2.Instance:
        """The instance itself: public subnet (no NAT), IMDSv2, encrypted gp3 root volume, replaced
        when its user data changes (the script only runs on first boot)."""
        return ec2.Instance(
            self,
            "Instance",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            associate_public_ip_address=True,
            instance_type=ec2.InstanceType(instance_type),
            machine_image=machine_image,
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
            user_data=ec2.UserData.custom(user_data),
            user_data_causes_replacement=True,
        )


def provisioning_statements(
    stack: Stack,
    *,
    thing_name: str,
    thing_group_name: str,
    policy_names: list[str],
    tes_role_name: str,
    tes_role_alias_name: str,
) -> list[iam.PolicyStatement]:
    """What the nucleus installer calls with ``--provision true``, given that the stack already
    created the role alias, the IoT policies and the ``<role>Access`` policy (read from
    ``DeviceProvisioningHelper`` in the nucleus source): the IoT side of
    :func:`_iot_provisioning_statements`, then the IAM side of :func:`_token_exchange_statements`.

    After first boot these rights are unused; detach them if the instance should keep none.
    """
    return [
        *_iot_provisioning_statements(
            stack,
            thing_name=thing_name,
            thing_group_name=thing_group_name,
            policy_names=policy_names,
            tes_role_alias_name=tes_role_alias_name,
        ),
        *_token_exchange_statements(stack, tes_role_name=tes_role_name),
    ]


def _iot_provisioning_statements(
    stack: Stack,
    *,
    thing_name: str,
    thing_group_name: str,
    policy_names: list[str],
    tes_role_alias_name: str,
) -> list[iam.PolicyStatement]:
    """The installer's AWS IoT calls:

    - ``iot:GetPolicy`` on the two IoT policies: it looks each up and would create it if missing;
    - ``iot:CreateKeysAndCertificate`` (no resource-level permission exists) for the device
      certificate, ``iot:AttachPolicy`` on certificates to attach both policies to it;
    - ``iot:CreateThing``/``iot:AttachThingPrincipal`` on this one thing name;
    - ``iot:CreateThingGroup`` (called even when the group exists; it then reuses it) and
      ``iot:AddThingToThingGroup`` on this one group and thing;
    - ``iot:DescribeEndpoint`` (no resource-level permission) for the data and credentials
      endpoints written to the nucleus config;
    - ``iot:DescribeRoleAlias`` on the alias: found, so no role or alias is created.
    """

    def iot_arn(resource: str, name: str) -> str:
        return stack.format_arn(service="iot", resource=resource, resource_name=name)

    return [
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
    ]


def _token_exchange_statements(stack: Stack, *, tes_role_name: str) -> list[iam.PolicyStatement]:
    """The installer's IAM calls: ``iam:GetPolicy`` on ``<role>Access`` (AWS-managed and account
    ARNs: it tries both) and ``iam:AttachRolePolicy`` of exactly that policy to exactly the token
    exchange role."""
    access_policy_name = f"{tes_role_name}Access"
    account_policy_arn = stack.format_arn(
        service="iam", region="", resource="policy", resource_name=access_policy_name
    )
    return [
        iam.PolicyStatement(
            sid="FindTokenExchangeAccessPolicy",
            actions=["iam:GetPolicy"],
            resources=[account_policy_arn, f"arn:{Aws.PARTITION}:iam::aws:policy/{access_policy_name}"],
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
