"""The MQTT identity ``verify_on_device`` uses to talk to the devices through AWS IoT Core.

The verifier connects with an X.509 certificate (``lambdas/core/verify.py`` reads it from a Secrets
Manager secret), so what it may do on the broker is decided by an IoT policy, not by IAM. The
policy lets it publish golden requests to any device's request topic and read any device's
result topic, and nothing else.

CloudFormation cannot create a certificate *with its private key*, so the certificate is made
once by hand (``docs/deploy-aws.md``: ``aws iot create-keys-and-certificate``) and its PEMs put in
the secret; with ``-c verifier_certificate_arn=...`` the stack attaches the policy to it.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iot as iot
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

#: Client ids ``pipeline.mqtt`` gives its connections (``mlops-edge-tool-<random>``).
VERIFIER_CLIENT_PREFIX = "mlops-edge-tool-"


class VerifierIdentity(Construct):
    """Secret for the verifier's certificate + the IoT policy of that certificate.

    Attributes:
        secret: holds ``{"certificate_pem", "private_key_pem", "ca_pem"}`` (filled by hand).
        policy: the verifier's IoT policy.
        policy_name: its name.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, name_prefix: str, certificate_arn: str = ""
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        def arn(resource: str, name: str) -> str:
            return stack.format_arn(service="iot", resource=resource, resource_name=name)

        self.secret = secretsmanager.Secret(
            self,
            "Certificate",
            secret_name=f"{name_prefix}/verifier-mqtt",
            description="MQTT client certificate of verify_on_device: certificate_pem, private_key_pem, ca_pem",
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.policy_name = f"{name_prefix}-verifier"
        self.policy = iot.CfnPolicy(
            self,
            "Policy",
            policy_name=self.policy_name,
            policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iot:Connect",
                        "Resource": arn("client", f"{VERIFIER_CLIENT_PREFIX}*"),
                    },
                    {
                        "Effect": "Allow",
                        "Action": "iot:Publish",
                        "Resource": arn("topic", "edge/*/inference/request"),
                    },
                    {
                        "Effect": "Allow",
                        "Action": "iot:Subscribe",
                        "Resource": arn("topicfilter", "edge/*/inference/result"),
                    },
                    {
                        "Effect": "Allow",
                        "Action": "iot:Receive",
                        "Resource": arn("topic", "edge/*/inference/result"),
                    },
                ],
            },
        )
        if certificate_arn:
            iot.CfnPolicyPrincipalAttachment(
                self, "Attachment", policy_name=self.policy_name, principal=certificate_arn
            ).add_dependency(self.policy)
