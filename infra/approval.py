"""The model-approval trigger of the pipeline stack: approving a package starts the deploy-only path.

It lives next to the state machine it starts, so deploying the pipeline stack alone (``mlops-edge
run`` locally, or ``cdk deploy MlopsEdgePipeline`` on AWS without the CI/CD stack) is enough for an
approval in the registry to deploy that model to the fleet.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

#: How ``ApprovalDescription`` starts when the pipeline approves a model itself
#: (``lambdas/core/promote.py``, after verifying it on every device). Such approvals must not start
#: the deploy-only path: that model is already deployed, and redeploying it would approve it
#: again, in a loop. A test checks promote.py still writes this prefix.
PIPELINE_APPROVAL_PREFIX = "verified on every device"
#: The event a model package's approval status change puts on the default bus.
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


class ApprovalTrigger(Construct):
    """Starts the deploy-only path when a model package is approved in the registry.

    A person approving a package (console, CLI, Studio) emits *SageMaker Model Package State
    Change* with ``ModelApprovalStatus: Approved``; the rule starts the state machine with that
    package's ARN, and the state machine skips training and deploys it. Approvals the pipeline
    made itself (``ApprovalDescription`` starting with :data:`PIPELINE_APPROVAL_PREFIX`) are
    ignored: the execution that approved them has already deployed and verified them.

    Attributes:
        rule: the EventBridge rule.
        role: the role the rule's target starts executions with (``states:StartExecution`` on the
            state machine only).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        model_package_group_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        common = {"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": ["Approved"]}
        self.rule = events.Rule(
            self,
            "Rule",
            description="Deploy a model package to the edge fleet when it is approved in the registry",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={
                    **common,
                    "$or": [
                        {"ApprovalDescription": [{"exists": False}]},
                        {"ApprovalDescription": [{"anything-but": {"prefix": PIPELINE_APPROVAL_PREFIX}}]},
                    ],
                },
            ),
        )
        # The role CDK would create for the target, but owned here rather than by the state machine
        # construct: the target grants it states:StartExecution on this state machine.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
        self.rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object(approval_input()),
                role=self.role,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )


def approval_input() -> dict[str, str]:
    """Execution input of the deploy-only path, filled from the approval event.

    Only fields of ``pipeline/config/input.schema.json`` (it allows no others); everything else
    takes the defaults of the function environment.
    """
    return {
        "comment": "deploy-only: model package approved in the registry",
        "model_package_arn": events.EventField.from_path("$.detail.ModelPackageArn"),
    }
