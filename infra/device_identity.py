"""What a Greengrass core device is allowed to be: the token exchange role and role alias its
components get AWS credentials from, and the IoT policy on its certificate.

The names match what the nucleus installer looks up with ``--provision true``
(``infra/edge_core.py`` grants the instance role only the reads and the thing/certificate it makes).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.permissions import log_group_writer

#: Name prefix the installer gives the IoT policy allowing ``iot:AssumeRoleWithCertificate``
#: (``DeviceProvisioningHelper.IOT_ROLE_POLICY_NAME_PREFIX`` in the nucleus source).
TES_CERT_POLICY_PREFIX = "GreengrassTESCertificatePolicy"

THING_NAME_VAR = "${iot:Connection.Thing.ThingName}"


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
