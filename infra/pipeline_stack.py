"""Pipeline stack: storage, training resources, the fleet's thing group, Lambdas, state machine, and
the model-approval trigger that starts it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import common
from infra.approval import ApprovalTrigger
from infra.common import Scope
from infra.functions import PipelineFunctions
from infra.monitoring import MONITOR_FUNCTION, DriftMonitoring, retraining_rule_name
from infra.permissions import grant_all
from infra.presence import DevicePresence
from infra.storage import PREFIXES, ArtifactStore
from infra.training import TrainingResources
from infra.verifier import VerifierIdentity
from pipeline.config.deployment import EdgeConfig
from pipeline.config.function_env import Settings

if TYPE_CHECKING:
    from pipeline.statemachine import PipelineStateMachine


class PipelineStack(Stack):
    """Everything the state machine needs, and the state machine itself.

    Attributes:
        store: artifact + access-log buckets.
        training: SageMaker role, image URI, source asset, model package group.
        thing_group: the fleet's IoT thing group (deployments target it).
        presence: the IoT rule writing each device's last lifecycle event to the bucket.
        verifier: the MQTT identity (secret + IoT policy) of verify_on_device.
        functions: the Lambdas.
        state_machine: the ``PipelineStateMachine`` construct (``.state_machine`` is the resource).
        approval: the EventBridge rule that starts the deploy-only path when a person approves a
            model package of the group (``infra/approval.py``).
        monitoring: the IoT rule running MonitorDrift on device windows and the (disabled)
            retraining rule (``infra/monitoring.py``).
        function_environment: the Lambda environment (the configure defaults).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EdgeConfig,
        source_tarball: bytes,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retention = common.retention(config.log_retention_days)
        self.store = ArtifactStore(self, "Storage", removal_policy=RemovalPolicy.RETAIN)
        self.training = TrainingResources(
            self,
            "Training",
            store=self.store,
            model_package_group_name=config.model_package_group_name,
            source_tarball=source_tarball,
        )
        self.thing_group = iot.CfnThingGroup(
            self,
            "ThingGroup",
            thing_group_name=config.thing_group_name,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description="Greengrass core devices the mlops-edge pipeline deploys to"
            ),
        )
        # A rollout's share-of-fleet stage moves its devices here from the fleet group (disjoint
        # targets: Greengrass combines the versions every group of a core asks for).
        self.canary_thing_group = iot.CfnThingGroup(
            self,
            "CanaryThingGroup",
            thing_group_name=config.canary_thing_group_name,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description="Canary devices of the mlops-edge fleet: a rollout's first stage"
            ),
        )
        # each device's last connect/disconnect under state/presence/ (CheckDeployment names
        # offline devices from it)
        self.presence = DevicePresence(
            self, "Presence", store=self.store, name_prefix=config.state_machine_name
        )
        self.verifier = VerifierIdentity(
            self,
            "Verifier",
            name_prefix=config.state_machine_name,
            certificate_arn=config.verifier_certificate_arn,
        )
        self.function_environment = self._function_environment(config)
        self.functions = self._functions(config, retention)
        self.state_machine_logs = logs.LogGroup(
            self,
            "StateMachineLogs",
            log_group_name=f"/aws/vendedlogs/states/{config.state_machine_name}",
            retention=retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = self._state_machine(config)
        self.approval = ApprovalTrigger(
            self,
            "Approval",
            state_machine=self.state_machine.state_machine,
            model_package_group_name=config.model_package_group_name,
        )
        # device windows -> MonitorDrift (IoT rule); fleet drift -> a retraining (EventBridge rule)
        self.monitoring = DriftMonitoring(
            self,
            "Monitoring",
            function=self.functions.functions[MONITOR_FUNCTION],
            state_machine=self.state_machine.state_machine,
            name_prefix=config.state_machine_name,
        )
        self._outputs(config)

    def _function_environment(self, config: EdgeConfig) -> dict[str, str]:
        """The handlers' :class:`~pipeline.config.function_env.Settings`: the defaults the execution
        input may override, written by the class the handlers read them with."""
        bucket = self.store.bucket.bucket_name
        return Settings(
            bucket=bucket,
            artifact_prefix=PREFIXES["artifacts"],
            state_prefix=PREFIXES["state"],
            dataset_uri=f"s3://{bucket}/{PREFIXES['datasets']}train/",
            model_package_group=config.model_package_group_name,
            thing_group=config.thing_group_name,
            canary_thing_group=config.canary_thing_group_name,
            component_prefix=config.component_prefix,
            training_image=self.training.image_uri,
            training_instance_type=config.training_instance_type,
            sourcedir_uri=self.training.source.s3_object_url,
            # verify_on_device: its MQTT certificate; the broker is found with iot:DescribeEndpoint.
            mqtt_secret_id=self.verifier.secret.secret_name,
            # Promote switches it per monitoring.retrain_on_drift (a name: the rule comes later)
            retraining_rule=retraining_rule_name(config.state_machine_name),
        ).to_env()

    def _functions(self, config: EdgeConfig, retention: logs.RetentionDays) -> PipelineFunctions:
        """One Lambda per handler, each granted exactly its entry of ``infra/permissions.py``."""
        # Imported here, not at module level: it builds CDK states and needs a live jsii kernel.
        from pipeline.statemachine import FUNCTION_NAMES

        functions = PipelineFunctions(
            self,
            "Functions",
            names=(*FUNCTION_NAMES, MONITOR_FUNCTION),
            environment=self.function_environment,
            log_retention=retention,
            function_name_prefix=config.state_machine_name,
        )
        grant_all(
            functions.roles,
            Scope(
                store=self.store,
                component_prefix=config.component_prefix,
                thing_group_name=config.thing_group_name,
                canary_thing_group_name=config.canary_thing_group_name,
                model_package_group_name=config.model_package_group_name,
                verifier_secret_arn=self.verifier.secret.secret_arn,
                retraining_rule_name=retraining_rule_name(config.state_machine_name),
            ),
            self,
        )
        return functions

    def _state_machine(self, config: EdgeConfig) -> PipelineStateMachine:
        """The ``PipelineStateMachine`` construct over the functions and the SageMaker role."""
        from pipeline.statemachine import PipelineStateMachine

        return PipelineStateMachine(
            self,
            "Orchestration",
            functions=self.functions.functions,
            sagemaker_role=self.training.role,
            log_group=self.state_machine_logs,
            state_machine_name=config.state_machine_name,
        )

    def _outputs(self, config: EdgeConfig) -> None:
        """What the operator's tools and docs/deploy-aws.md read from the stack."""
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine.state_machine_arn)
        CfnOutput(self, "ArtifactBucketName", value=self.store.bucket.bucket_name)
        CfnOutput(self, "DatasetUri", value=self.function_environment[Settings.variable("dataset_uri")])
        CfnOutput(self, "ModelPackageGroupName", value=config.model_package_group_name)
        CfnOutput(self, "ThingGroupName", value=config.thing_group_name)
        CfnOutput(self, "CanaryThingGroupName", value=config.canary_thing_group_name)
        CfnOutput(self, "VerifierSecretName", value=self.verifier.secret.secret_name)
        CfnOutput(self, "VerifierIotPolicyName", value=self.verifier.policy_name)
        CfnOutput(self, "RetrainingRuleName", value=self.monitoring.retraining_rule.rule_name)
