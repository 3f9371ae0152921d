"""CI/CD stack: CodePipeline from a git push to a state machine execution.

The model-approval rule is the pipeline stack's (``infra/approval.py``), not this one's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import common
from infra.cicd import DeliveryPipeline
from pipeline.config.deployment import EdgeConfig


class CiCdStack(Stack):
    """The delivery pipeline.

    ``synth_context`` is what the pipeline's own ``cdk synth`` is given as ``-c`` arguments on top
    of cdk.json (``infra.cicd.recorded_context``: the settings this stack was deployed with that
    cdk.json alone would not give), so a push redeploys the app as the person last deployed it.

    Attributes:
        state_machine: the pipeline's state machine, imported by its configured name.
        delivery: the CodePipeline construct.
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
        CfnOutput(self, "PipelineName", value=self.delivery.pipeline.pipeline_name)
