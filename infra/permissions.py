"""Least-privilege grants of each pipeline Lambda, in one table.

Each handler gets only the API actions its core calls (``lambdas/core/``), on the narrowest
resources the API supports: bucket prefixes, components under the configured name prefix, the
fleet's and the canary thing group, the model package group. Actions without resource-level permissions
(``iot:DescribeEndpoint``, ``greengrass:CreateDeployment``, X-Ray's trace uploads) are the only
ones on ``*``, and each is listed by name: no wildcard actions, no ``*FullAccess``.

Greengrass V2 actions also need their *dependent actions* (:data:`GREENGRASS_DEPENDENT_ACTIONS`)
on the caller: Greengrass runs deployments as AWS IoT jobs and reads things, thing groups, job
executions and shadows with the caller's own permissions. A test checks every role that holds a
Greengrass action also holds its dependent actions, scoped to the fleet's and canary thing groups, IoT jobs
and things.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.common import Scope
from infra.monitoring import monitor_drift_grants, retraining_rule_switch
from infra.storage import PREFIXES

#: Dependent actions of the AWS IoT Greengrass V2 actions, from the Service Authorization Reference
#: ("Actions, resources, and condition keys for AWS IoT Greengrass V2", *Dependent actions*
#: column). A Greengrass action missing from both tables must be looked up before it is granted.
GREENGRASS_DEPENDENT_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "greengrass:CreateDeployment": (
        "iot:CancelJob",
        "iot:CreateJob",
        "iot:DeleteThingShadow",
        "iot:DescribeJob",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
        "iot:UpdateJob",
        "iot:UpdateThingShadow",
    ),
    "greengrass:CancelDeployment": (
        "iot:CancelJob",
        "iot:DeleteThingShadow",
        "iot:DescribeJob",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
        "iot:UpdateJob",
        "iot:UpdateThingShadow",
    ),
    "greengrass:GetDeployment": (
        "iot:DescribeJob",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
    ),
    "greengrass:ListDeployments": (
        "iot:DescribeJob",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
    ),
    "greengrass:ListEffectiveDeployments": (
        "iot:DescribeJob",
        "iot:DescribeJobExecution",
        "iot:DescribeThing",
        "iot:DescribeThingGroup",
        "iot:GetThingShadow",
    ),
    "greengrass:DeleteCoreDevice": ("iot:DescribeJobExecution",),
}

#: Greengrass V2 actions the same reference lists with no dependent actions.
GREENGRASS_WITHOUT_DEPENDENT_ACTIONS: frozenset[str] = frozenset(
    {
        "greengrass:CreateComponentVersion",
        "greengrass:DescribeComponent",
        "greengrass:GetComponent",
        "greengrass:GetComponentVersionArtifact",
        "greengrass:ListComponentVersions",
        "greengrass:ListComponents",
        "greengrass:GetCoreDevice",
        "greengrass:ListCoreDevices",
        "greengrass:ListInstalledComponents",
        "greengrass:ResolveComponentCandidates",
    }
)


def log_group_writer(stack: Stack, log_group_pattern: str, *, sid: str | None = None) -> iam.PolicyStatement:
    """Create and write log streams only under ``log_group_pattern`` (a service's own log groups)."""
    return iam.PolicyStatement(
        sid=sid,
        actions=[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ],
        resources=[
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=log_group_pattern,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )


def _s3_read(role: iam.IRole, scope: Scope, *prefixes: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[scope.store.objects(p) for p in prefixes])
    )
    _s3_list(role, scope, *prefixes)


def _s3_write(role: iam.IRole, scope: Scope, *prefixes: str) -> None:
    """Write-once keys: ``put_immutable`` HEADs first, so GetObject and ListBucket come with it
    (without ListBucket a missing key answers 403 instead of 404)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject", "s3:GetObject"], resources=[scope.store.objects(p) for p in prefixes]
        )
    )
    _s3_list(role, scope, *prefixes)


def _s3_list(role: iam.IRole, scope: Scope, *prefixes: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[scope.store.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{PREFIXES[p]}*" for p in prefixes]}},
        )
    )


def _model_packages(role: iam.IRole, scope: Scope, node: Construct, *actions: str) -> None:
    group = scope.model_package_group_name.lower()
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[
                scope.arn(node, "sagemaker", "model-package", f"{group}/*"),
                scope.arn(node, "sagemaker", "model-package-group", group),
            ],
        )
    )


def _components(role: iam.IRole, scope: Scope, node: Construct, *actions: str) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[scope.arn(node, "greengrass", "components", f"{scope.component_prefix}.*", sep=":")],
        )
    )


def _groups(scope: Scope, node: Construct) -> list[str]:
    """ARNs of the thing groups the pipeline deploys to: the fleet's and the canary group."""
    names = [scope.thing_group_name, scope.canary_thing_group_name]
    return [scope.arn(node, "iot", "thinggroup", name) for name in names if name]


def _fleet_read(role: iam.IRole, scope: Scope, node: Construct) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iot:DescribeThingGroup", "iot:ListThingsInThingGroup"],
            resources=_groups(scope, node),
        )
    )


def _canary_moves(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """A share-of-fleet stage moves devices between the fleet and the canary group, and only there.

    AddThingToThingGroup / RemoveThingFromThingGroup authorize on both the group and the thing
    (Service Authorization Reference, AWS IoT: resource types thinggroup* and thing*); thing names
    are made at run time by self-provisioning devices, so the things are ``thing/*``.
    """
    if not scope.canary_thing_group_name:
        return
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CanaryMembership",
            actions=["iot:AddThingToThingGroup", "iot:RemoveThingFromThingGroup"],
            resources=[*_groups(scope, node), scope.arn(node, "iot", "thing", "*")],
        )
    )


def _deployments(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """Create/replace the fleet's Greengrass deployment.

    ``greengrass:CreateDeployment`` is granted on ``*`` as in AWS's own Greengrass policies (the
    target is a request parameter, not a resource the action can be scoped to); what it may
    actually touch is bounded by its dependent IoT actions below: jobs, this one thing group, and
    the things' deployment shadows.
    """
    jobs = scope.arn(node, "iot", "job", "*")
    things = scope.arn(node, "iot", "thing", "*")
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="DeployToFleet", actions=["greengrass:CreateDeployment"], resources=["*"])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DeploymentJobs",
            actions=["iot:CreateJob", "iot:DescribeJob", "iot:UpdateJob", "iot:CancelJob"],
            resources=[*_groups(scope, node), jobs],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DeploymentShadows",
            actions=[
                "iot:DescribeThing",
                "iot:GetThingShadow",
                "iot:UpdateThingShadow",
                "iot:DeleteThingShadow",
            ],
            resources=[things],
        )
    )
    _fleet_read(role, scope, node)


def _device_status(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """Each device's own result for a deployment (ListEffectiveDeployments), devices of the group.

    ListEffectiveDeployments reads, with the caller's permissions, the deployment's IoT job, the
    device's job execution, thing and shadow, and the target thing group (its dependent actions):
    on IoT jobs and things (their names are made at run time: job ids by Greengrass, thing names
    by self-provisioning devices) and on the fleet's and the canary thing group.
    """
    jobs = scope.arn(node, "iot", "job", "*")
    things = scope.arn(node, "iot", "thing", "*")
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="CoreDeviceDeployments",
            actions=["greengrass:ListEffectiveDeployments"],
            resources=[scope.arn(node, "greengrass", "coreDevices", "*", sep=":")],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="EffectiveDeploymentJobs",
            actions=["iot:DescribeJob", "iot:DescribeJobExecution"],
            resources=[jobs, things],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="EffectiveDeploymentDevices",
            actions=["iot:DescribeThing", "iot:GetThingShadow"],
            resources=[things],
        )
    )
    _fleet_read(role, scope, node)


def _configure(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """Validation and defaults only. It would upload ``sourcedir.tar.gz`` when no
    ``MLOPS_EDGE_SOURCEDIR_URI`` is set, but the stack always sets it (the CDK asset)."""


def _export_onnx(role: iam.IRole, scope: Scope, node: Construct) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeTrainingJob"],
            resources=[scope.arn(node, "sagemaker", "training-job", "*")],
        )
    )
    _s3_read(role, scope, "training", "datasets")
    _s3_write(role, scope, "models")


def _register_model(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _model_packages(role, scope, node, "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage")
    _s3_write(role, scope, "models")


def _publish_components(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _components(
        role,
        scope,
        node,
        "greengrass:CreateComponentVersion",
        "greengrass:DescribeComponent",
    )
    _model_packages(role, scope, node, "sagemaker:DescribeModelPackage")
    _s3_read(role, scope, "models")
    _s3_write(role, scope, "components")
    # monitoring/<model version>/baseline/*.json and context.json (lambdas/core/monitoring_context.py)
    _s3_write(role, scope, "monitoring")


def _check_components(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _components(role, scope, node, "greengrass:DescribeComponent")


def _deploy(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _deployments(role, scope, node)
    _canary_moves(role, scope, node)
    _s3_write(role, scope, "state")  # the execution's per-device targets (pipeline/execution_detail.py)


def _check_deployment(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _device_status(role, scope, node)
    _s3_write(role, scope, "state")  # per-device statuses, rewritten on every poll and read back


def _verify_on_device(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """MQTT goes over mTLS with the verifier's certificate (its IoT policy, ``infra/verifier.py``,
    decides the topics); IAM only reads that certificate and finds the data endpoint."""
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="IotDataEndpoint", actions=["iot:DescribeEndpoint"], resources=["*"])
    )
    if scope.verifier_secret_arn:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="VerifierCertificate",
                actions=["secretsmanager:GetSecretValue"],
                resources=[scope.verifier_secret_arn],
            )
        )
    _s3_read(role, scope, "models")  # golden.json
    _s3_write(role, scope, "state")  # per-device verification results; reads the deployment's


def _evaluate_stage(role: iam.IRole, scope: Scope, node: Construct) -> None:
    """Reads the stage's per-device status and verification, writes each device's stage."""
    _s3_write(role, scope, "state")


def _promote(role: iam.IRole, scope: Scope, node: Construct) -> None:
    _model_packages(role, scope, node, "sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage")
    _s3_write(role, scope, "state")
    retraining_rule_switch(role, scope, node)


def _rollback(role: iam.IRole, scope: Scope, node: Construct) -> None:
    # reads last known good; writes the stopping rollout stage's devices (rollout.json)
    _s3_write(role, scope, "state")
    _deployments(role, scope, node)


GRANTS: Mapping[str, Callable[[iam.IRole, Scope, Construct], None]] = {
    "configure": _configure,
    "export_onnx": _export_onnx,
    "register_model": _register_model,
    "publish_components": _publish_components,
    "check_components": _check_components,
    "deploy": _deploy,
    "check_deployment": _check_deployment,
    "verify_on_device": _verify_on_device,
    "evaluate_stage": _evaluate_stage,
    "promote": _promote,
    "rollback": _rollback,
    "monitor_drift": monitor_drift_grants,
}


def grant_all(roles: Mapping[str, iam.IRole], scope: Scope, node: Construct) -> None:
    """Apply :data:`GRANTS` to every function role; a handler without an entry is an error, so
    a new handler cannot ship with an accidental empty (or accidental broad) policy."""
    unknown = sorted(set(roles) - set(GRANTS))
    if unknown:
        raise ValueError(f"no IAM grants defined for handlers {unknown}: add them to infra/permissions.py")
    for name, role in roles.items():
        GRANTS[name](role, scope, node)
