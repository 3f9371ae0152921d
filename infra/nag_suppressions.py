"""Every cdk-nag suppression of the app, each with its reason, in one place.

Rules are suppressed on the construct that causes them (and its children), never stack-wide, and
``AwsSolutions-IAM5`` only for the exact wildcard findings listed (``appliesTo``), so a new
wildcard anywhere still fails the nag test. The reasons are the review record: read them before
adding to the list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

#: How CDK renders the region and account in a finding: tokens when the stack is
#: environment-agnostic (``python app.py``), literal values when the CLI supplies them
#: (``CDK_DEFAULT_REGION`` / ``CDK_DEFAULT_ACCOUNT``). Every pattern accepts both.
_REGION = r"(?:<AWS::Region>|[a-z]{2}(?:-[a-z]+)+-\d)"
_ACCOUNT = r"(?:<AWS::AccountId>|\d{12})"


@dataclass(frozen=True)
class Pattern:
    """A finding pattern (regular expression over cdk-nag's ``Resource::``/``Action::`` strings)."""

    regex: str


AppliesTo = str | Pattern


def _regex(pattern: str) -> Pattern:
    return Pattern(pattern)


def _to_nag(item: AppliesTo) -> RegexAppliesTo:
    """A cdk-nag regex literal; literal findings are escaped, then region/account generalized."""
    pattern = item.regex if isinstance(item, Pattern) else "^" + re.escape(item) + "$"
    for token, general in (("<AWS::Region>", _REGION), ("<AWS::AccountId>", _ACCOUNT)):
        pattern = pattern.replace(re.escape(token), general).replace(token, general)
    return RegexAppliesTo(regex=f"/{pattern}/g")


#: Findings shared by every role that touches the artifact bucket: object ARNs under the fixed
#: prefixes of ``infra/storage.py``.
_ARTIFACT_PREFIXES = _regex(
    r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/(datasets|artifacts/(training|models|components)|state)/\*$"
)


@dataclass(frozen=True)
class Suppression:
    """One suppression: which construct (from the stacks), which rule, why, which findings."""

    stack: str
    target: Callable[[Stack], Construct]
    rule: str
    reason: str
    applies_to: Sequence[AppliesTo] = ()


SUPPRESSIONS: tuple[Suppression, ...] = (
    # ---------------------------------------------------------------- pipeline stack: Lambdas
    Suppression(
        "pipeline",
        lambda s: s.functions,  # type: ignore[attr-defined]
        "AwsSolutions-L1",
        "Python 3.11 is the project's interpreter (pyproject requires-python <3.12); the handlers, the "
        "pinned ML wheels and the container image are built and tested for it. The runtime moves "
        "together with pyproject.toml, not on its own.",
    ),
    Suppression(
        "pipeline",
        lambda s: s.functions,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Resource '*' only for actions that have no resource-level permissions: X-Ray "
        "PutTraceSegments/PutTelemetryRecords (active tracing), iot:DescribeEndpoint (the verifier "
        "finds the IoT data endpoint) and greengrass:CreateDeployment (its target is a request "
        "parameter; its dependent IoT job and shadow actions are scoped). Every other action is on a "
        "scoped ARN.",
        ["Resource::*"],
    ),
    Suppression(
        "pipeline",
        lambda s: s.functions,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Object keys are content-addressed and created at run time; each role gets only the prefixes it "
        "reads or writes (datasets/, artifacts/training|models|components/, state/), never the bucket.",
        [_ARTIFACT_PREFIXES],
    ),
    Suppression(
        "pipeline",
        lambda s: s.functions,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Names generated at run time, scoped as tightly as the ARN allows: model package versions inside "
        "the one model package group; component versions under the configured component name prefix; "
        "training jobs named per execution; IoT job IDs assigned by Greengrass "
        "CreateDeployment; core devices (things) that self-provision into the fleet's thing group.",
        [
            _regex(
                r"^Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:model-package/[a-z0-9-]+/\*$"
            ),
            _regex(
                r"^Resource::arn:<AWS::Partition>:greengrass:<AWS::Region>:<AWS::AccountId>:components:[A-Za-z0-9.]+\.\*$"
            ),
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
            "Resource::arn:<AWS::Partition>:greengrass:<AWS::Region>:<AWS::AccountId>:coreDevices:*",
            "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:job/*",
            "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*",
        ],
    ),
    Suppression(
        "pipeline",
        lambda s: s.functions,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Drift monitoring (issue 16, docs/monitoring.md): keys are named by model version, device and "
        "window start at run time. PublishComponents and MonitorDrift use state/monitoring/ only; "
        "MonitorDrift deletes only alert markers (state/monitoring/<version>/alerts/) and writes "
        "retraining snapshots only under datasets/retraining/, which the SageMaker role reads.",
        [
            _regex(r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/state/monitoring/\*$"),
            _regex(r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/state/monitoring/\*/alerts/\*$"),
            _regex(r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/datasets/retraining/\*$"),
        ],
    ),
    Suppression(
        "pipeline",
        lambda s: s.verifier.secret,  # type: ignore[attr-defined]
        "AwsSolutions-SMG4",
        "The secret holds an AWS IoT X.509 certificate and key, not a password: it is rotated by "
        "issuing a new certificate in AWS IoT (docs/deploy-aws.md), which Secrets Manager rotation "
        "cannot do.",
    ),
    Suppression(
        "pipeline",
        lambda s: s.presence.role,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "The presence rule writes one object per MQTT client id (state/presence/<clientId>.json), "
        "names only known when a device connects; PutObject is limited to that prefix.",
        [_regex(r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/state/presence/\*$")],
    ),
    # ------------------------------------------------------- pipeline stack: SageMaker role
    Suppression(
        "pipeline",
        lambda s: s.training.role,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "SageMaker's documented training-job execution needs: ecr:GetAuthorizationToken and "
        "cloudwatch:PutMetricData have no resource-level permissions (the latter is limited to the "
        "/aws/sagemaker/TrainingJobs namespace by condition); log streams are per job under SageMaker's "
        "own log group; the job reads datasets/ and writes artifacts/training/ only.",
        [
            "Resource::*",
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*",
            _ARTIFACT_PREFIXES,
        ],
    ),
    # ------------------------------------------------------ pipeline stack: state machine role
    Suppression(
        "pipeline",
        lambda s: s.state_machine,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Generated by CDK for the state machine: LambdaInvoke grants the function ARN and its "
        "versions/aliases (<arn>:*); X-Ray tracing needs Resource '*'; training jobs are named per "
        "execution (the CustomState's sagemaker:CreateTrainingJob/DescribeTrainingJob).",
        [
            _regex(r"^Resource::<Functions[A-Za-z]+[0-9A-F]{8}\.Arn>:\*$"),
            "Resource::*",
            "Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:training-job/*",
        ],
    ),
    # ------------------------------------------------------------------- edge core stack
    Suppression(
        "edge",
        lambda s: s.core.role,  # type: ignore[attr-defined]
        "AwsSolutions-IAM4",
        "AmazonSSMManagedInstanceCore is AWS's documented minimum for Session Manager, which replaces "
        "SSH here (no key pair, no ingress rule).",
        ["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore"],
    ),
    Suppression(
        "edge",
        lambda s: s.core,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Greengrass automatic provisioning: iot:CreateKeysAndCertificate and iot:DescribeEndpoint have "
        "no resource-level permissions, and the certificate the installer attaches policies to is "
        "created in the same run (its ID is unknown before). Everything else is on named resources.",
        ["Resource::*", "Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*"],
    ),
    Suppression(
        "edge",
        lambda s: s.core.instance,  # type: ignore[attr-defined]
        "AwsSolutions-EC28",
        "One simulated edge device: basic 5-minute metrics suffice, detailed monitoring is billed per "
        "metric and adds nothing to the pipeline's own device-level checks.",
    ),
    Suppression(
        "edge",
        lambda s: s.core.instance,  # type: ignore[attr-defined]
        "AwsSolutions-EC29",
        "A disposable simulated device, replaced on user-data change and removed with the stack; "
        "termination protection would make `cdk destroy` fail.",
    ),
    Suppression(
        "edge",
        lambda s: s.token_exchange,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Token exchange role: devices download component artifacts (content-addressed keys) under "
        "artifacts/components/ only, and the nucleus writes one log group per component under "
        "/aws/greengrass/.",
        [
            _regex(r"^Resource::<StorageArtifacts[0-9A-F]+\.Arn>/artifacts/components/\*$"),
            "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/greengrass/*",
        ],
    ),
    # ---------------------------------------------------------------------- CI/CD stack
    Suppression(
        "cicd",
        lambda s: s.delivery,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "Generated by CDK for CodePipeline/CodeBuild on the pipeline's own artifact bucket and KMS key "
        "(s3:GetObject*/List*/..., kms:GenerateDataKey*/ReEncrypt*), the build projects' own log groups "
        "and report groups, and the Step Functions action's DescribeExecution on the executions it starts.",
        [
            _regex(r"^Action::s3:(Abort|DeleteObject|GetBucket|GetObject|List)\*$"),
            _regex(r"^Action::kms:(GenerateDataKey|ReEncrypt)\*$"),
            _regex(r"^Resource::<DeliveryArtifacts[0-9A-F]+\.Arn>/\*$"),
            _regex(
                r"^Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/codebuild/<Delivery[A-Za-z]+[0-9A-F]{8}>:\*$"
            ),
            _regex(
                r"^Resource::arn:<AWS::Partition>:codebuild:<AWS::Region>:<AWS::AccountId>:report-group/<Delivery[A-Za-z]+[0-9A-F]{8}>-\*$"
            ),
            _regex(
                r"^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:[A-Za-z0-9-]+:codepipeline\*$"
            ),
        ],
    ),
    Suppression(
        "cicd",
        lambda s: s.delivery.deploy_role,  # type: ignore[attr-defined]
        "AwsSolutions-IAM5",
        "The deploy step may only assume the CDK bootstrap roles of this account and region "
        "(cdk-<qualifier>-{deploy,file-publishing,image-publishing,lookup}-role-...); `cdk deploy` does "
        "everything through them, so the build itself holds no deployment rights.",
        [
            _regex(
                r"^Resource::arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-[a-z0-9]+-\*-<AWS::AccountId>-<AWS::Region>$"
            )
        ],
    ),
)


def apply_suppressions(stacks: Mapping[str, Stack]) -> None:
    """Attach :data:`SUPPRESSIONS` to the constructs of ``stacks`` (keys: pipeline, edge, cicd)."""
    for item in SUPPRESSIONS:
        target = item.target(stacks[item.stack])
        applies_to = [_to_nag(a) for a in item.applies_to] or None
        suppression = NagPackSuppression(id=item.rule, reason=item.reason, applies_to=applies_to)
        NagSuppressions.add_resource_suppressions(target, [suppression], apply_to_children=True)
