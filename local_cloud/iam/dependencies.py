"""Which dependent actions the local cloud enforces, per IAM action, and why.

AWS's reference lists *dependent actions*: what an action **may** need beyond itself.
``sagemaker:CreateModelPackage`` lists ``sagemaker:AddTags``, needed only when the request tags;
requiring every listed action would refuse calls AWS accepts. So each action that has dependent
actions in the dataset gets an entry here saying, for every listed action, either

- ``enforced``: a ``Dependency`` with the resources it touches (templates over the request's
  parameters and the provider's facts), the condition under which it applies, and why; or
- ``not_enforced``: why not (with the evidence we have).

A test checks that every entry covers exactly the dataset's list, so a dataset upgrade that adds
a dependent action fails until someone decides about it. Actions with dependent actions but no
entry are reported by ``operations.required_access`` as not enforced ("no entry").

``IMPLIED`` holds permissions AWS requires from request *parameters* that the reference does not
list as dependent actions (S3's ``PutObjectTagging`` for a tagged upload, ``GetObject`` on a copy
source).

Templates: ``{name}`` is a request parameter or provider fact (case-insensitive; a list expands
to one resource each; an empty list means the operation touches none, so no check);
``{new:name}`` is a fact when given, else a fresh id (ids AWS makes during the call, such as the
IoT job of a new deployment, cannot be named by a policy except through a wildcard);
``{partition}``, ``{region}``, ``{account}`` are the request's. Resource choices follow the
dataset's resource types for the dependent action.

Greengrass V2 facts the provider supplies (``FACTS``): the IoT job of a deployment (``jobId``), the
jobs and target thing groups of the deployments effective on a core device (``jobIds``,
``thingGroupNames``), the job a new deployment replaces (``previousJobIds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

_JOB = "arn:{partition}:iot:{region}:{account}:job/{jobId}"
_NEW_JOB = "arn:{partition}:iot:{region}:{account}:job/{new:jobId}"
_JOBS = "arn:{partition}:iot:{region}:{account}:job/{jobIds}"
_PREVIOUS_JOBS = "arn:{partition}:iot:{region}:{account}:job/{previousJobIds}"
_CORE_THING = "arn:{partition}:iot:{region}:{account}:thing/{coreDeviceThingName}"
_GROUPS = "arn:{partition}:iot:{region}:{account}:thinggroup/{thingGroupNames}"
GREENGRASS = "greengrass.amazonaws.com"


@dataclass(frozen=True)
class Dependency:
    """One enforced dependent (or implied) action."""

    action: str
    resources: tuple[str, ...]
    why: str
    #: "" always; "param:<Name>" when the parameter is non-empty; "fact:<name>" likewise for a
    #: fact; "target:thing" / "target:thinggroup" by the kind of ``targetArn``.
    when: str = ""
    #: the service principal acting with the caller's permissions (aws:CalledVia), "" if the
    #: caller's own request needs the permission (iam:PassRole)
    via: str = ""
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DependentActions:
    enforced: tuple[Dependency, ...] = ()
    not_enforced: Mapping[str, str] = field(default_factory=dict)


_GG_DEPLOY_JOB = (
    "a Greengrass V2 deployment to a thing group is an IoT job Greengrass runs with the caller's permissions"
)
_GG_THING = "a deployment to a single thing travels in the thing's shadow, not in a job"

DEPENDENT: Mapping[str, DependentActions] = {
    "greengrass:ListEffectiveDeployments": DependentActions(
        enforced=(
            Dependency(
                "iot:DescribeJob", (_JOBS,), "reads each effective deployment's IoT job", via=GREENGRASS
            ),
            Dependency(
                "iot:DescribeJobExecution",
                (_CORE_THING,),
                "reads the device's execution of each job",
                via=GREENGRASS,
            ),
            Dependency(
                "iot:DescribeThing", (_CORE_THING,), "resolves the core device's thing", via=GREENGRASS
            ),
            Dependency(
                "iot:DescribeThingGroup",
                (_GROUPS,),
                "resolves each deployment's target group",
                via=GREENGRASS,
            ),
            Dependency(
                "iot:GetThingShadow", (_CORE_THING,), "reads the device's deployment shadow", via=GREENGRASS
            ),
        )
    ),
    "greengrass:CreateDeployment": DependentActions(
        enforced=(
            Dependency(
                "iot:CreateJob", (_NEW_JOB, "{targetArn}"), _GG_DEPLOY_JOB, "target:thinggroup", GREENGRASS
            ),
            Dependency(
                "iot:DescribeThingGroup",
                ("{targetArn}",),
                "resolves the target group",
                "target:thinggroup",
                GREENGRASS,
            ),
            Dependency(
                "iot:CancelJob",
                (_PREVIOUS_JOBS,),
                "a new deployment to a target cancels the job of the one it replaces",
                "fact:previousJobIds",
                GREENGRASS,
            ),
            Dependency("iot:DescribeThing", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
            Dependency("iot:GetThingShadow", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
            Dependency("iot:UpdateThingShadow", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
        ),
        not_enforced={
            "iot:DescribeJob": "no step of creating a deployment reads a job back; listed as may-need",
            "iot:UpdateJob": "replacing a deployment cancels its job (CancelJob), it does not update it",
            "iot:DeleteThingShadow": "only when a thing's deployment is removed, which CreateDeployment does not do",
        },
    ),
    "greengrass:GetDeployment": DependentActions(
        enforced=(
            Dependency(
                "iot:DescribeJob", (_JOB,), "reads the deployment's IoT job status", "fact:jobId", GREENGRASS
            ),
            Dependency(
                "iot:DescribeThingGroup",
                ("{targetArn}",),
                "resolves the target group",
                "target:thinggroup",
                GREENGRASS,
            ),
            Dependency("iot:DescribeThing", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
            Dependency("iot:GetThingShadow", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
        )
    ),
    "greengrass:CancelDeployment": DependentActions(
        enforced=(
            Dependency(
                "iot:CancelJob",
                (_JOB,),
                "cancelling a deployment cancels its IoT job",
                "fact:jobId",
                GREENGRASS,
            ),
            Dependency(
                "iot:DescribeJob",
                (_JOB,),
                "reads the job's state before cancelling",
                "fact:jobId",
                GREENGRASS,
            ),
            Dependency(
                "iot:DescribeThingGroup",
                ("{targetArn}",),
                "resolves the target group",
                "target:thinggroup",
                GREENGRASS,
            ),
            Dependency("iot:DescribeThing", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
            Dependency("iot:GetThingShadow", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
            Dependency("iot:UpdateThingShadow", ("{targetArn}",), _GG_THING, "target:thing", GREENGRASS),
        ),
        not_enforced={
            "iot:UpdateJob": "a cancel is CancelJob; nothing updates the job document",
            "iot:DeleteThingShadow": "the shadow is rewritten (UpdateThingShadow), not deleted",
        },
    ),
    "greengrass:DeleteCoreDevice": DependentActions(
        enforced=(
            Dependency(
                "iot:DescribeJobExecution",
                (_CORE_THING,),
                "checks the device has no running execution",
                via=GREENGRASS,
            ),
        )
    ),
    "sagemaker:CreateTrainingJob": DependentActions(
        enforced=(
            Dependency(
                "iam:PassRole",
                ("{RoleArn}",),
                "the job runs as RoleArn: passing a role is the caller's own permission",
                context={"iam:PassedToService": "sagemaker.amazonaws.com"},
            ),
            Dependency(
                "sagemaker:AddTags",
                ("arn:{partition}:sagemaker:{region}:{account}:training-job/{lower:TrainingJobName}",),
                "tags given at creation are added with AddTags",
                "param:Tags",
            ),
        )
    ),
    "sagemaker:CreateModelPackage": DependentActions(
        enforced=(
            Dependency(
                "sagemaker:AddTags",
                (
                    "arn:{partition}:sagemaker:{region}:{account}:model-package/{lower:ModelPackageGroupName}/{ModelPackageVersion}",
                ),
                "tags given at creation are added with AddTags (the issue's own example)",
                "param:Tags",
            ),
        )
    ),
    "sagemaker:CreateModelPackageGroup": DependentActions(
        enforced=(
            Dependency(
                "sagemaker:AddTags",
                (
                    "arn:{partition}:sagemaker:{region}:{account}:model-package-group/{lower:ModelPackageGroupName}",
                ),
                "tags given at creation are added with AddTags",
                "param:Tags",
            ),
        )
    ),
}

#: Permissions AWS requires because of a request parameter, not listed as dependent actions.
IMPLIED: Mapping[str, tuple[Dependency, ...]] = {
    "s3:PutObject": (
        Dependency(
            "s3:PutObjectTagging",
            ("arn:{partition}:s3:::{Bucket}/{Key}",),
            "S3 requires s3:PutObjectTagging for an upload with x-amz-tagging",
            "param:Tagging",
        ),
    ),
}

#: Facts the provider supplies for an operation's dependent actions (the dispatcher asks for these).
FACTS: Mapping[str, tuple[str, ...]] = {
    "greengrass:ListEffectiveDeployments": ("jobIds", "thingGroupNames"),
    "greengrass:CreateDeployment": ("previousJobIds",),
    "greengrass:GetDeployment": ("jobId", "targetArn"),
    "greengrass:CancelDeployment": ("jobId", "targetArn"),
    "sagemaker:CreateModelPackage": ("ModelPackageVersion",),
    "secretsmanager:GetSecretValue": ("SecretArn",),
}
