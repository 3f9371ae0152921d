"""CI/CD stack: CodePipeline from a git push to a state machine execution, and the approval rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import common
from infra.cicd import ApprovalTrigger, DeliveryPipeline
from pipeline.config.deployment import EdgeConfig


class CiCdStack(Stack):
    """The delivery pipeline and the model-approval trigger.

    ``synth_context`` is what the pipeline's own ``cdk synth`` is given as ``-c`` arguments on top
    of cdk.json (``infra.cicd.recorded_context``: the settings this stack was deployed with that
    cdk.json alone would not give), so a push redeploys the app as the person last deployed it.

    Attributes:
        state_machine: the pipeline's state machine, imported by its configured name.
        delivery: the CodePipeline construct.
        approval: the EventBridge approval trigger.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EdgeConfig,
        deploy_stacks: Sequence[str],
        synth_context: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.state_machine = sfn.StateMachine.from_state_machine_name(
            self, "StateMachine", config.state_machine_name
        )
        self.delivery = DeliveryPipeline(
            self,
            "Delivery",
            config=config,
            state_machine=self.state_machine,
            deploy_stacks=deploy_stacks,
            log_retention=common.retention(config.log_retention_days),
            synth_context=synth_context or {},
        )
        self.approval = ApprovalTrigger(
            self,
            "Approval",
            state_machine=self.state_machine,
            model_package_group_name=config.model_package_group_name,
        )
        CfnOutput(self, "PipelineName", value=self.delivery.pipeline.pipeline_name)
