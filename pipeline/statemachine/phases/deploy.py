"""Phase ``deploy``: a Greengrass deployment, finished on every device of the thing group.

``Deploy`` → ``CheckDeployment`` → ``DeploymentDone?`` ⟲ ``WaitDeployment``. The first check
comes right after CreateDeployment; each check says when the next is due (``next_poll_at``: the
back-off of ``poll.deployment``), which the Wait waits until. Success is each
device's own result for this deployment (``ListEffectiveDeployments``), not the job-level status:
a device that rolled back is a failure. The loop's time budget (``poll.deployment.timeout_s``,
counted from CreateDeployment) is enforced by CheckDeployment itself, which fails with
``DeploymentTimedOut`` naming each unfinished device and its last contact; ``max_polls`` is only a
safety bound. From here on devices run new versions, so every error, and a deployment that never
finishes, goes to ``on_error`` (``Rollback``).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory, Target
from pipeline.statemachine.phases import Phase


def build(f: StateFactory, *, on_error: Target) -> Phase:
    deploy = f.invoke(
        "Deploy",
        "deploy",
        "$.deployment",
        comment="Greengrass deployment to the thing group, ROLLBACK policy.",
        on_error=on_error,
    )
    wait_deployment = f.wait("WaitDeployment", "deployment", until=True)
    check_deployment = f.invoke(
        "CheckDeployment",
        "check_deployment",
        "$.deployment_status",
        comment="Each device's own result for this deployment (ListEffectiveDeployments).",
        on_error=on_error,
    )
    deployment_timed_out = f.error(
        "DeploymentTimedOutError",
        "DeploymentTimedOut",
        "Deployment {} not finished on every device after poll.deployment.max_polls checks "
        "(a safety bound; CheckDeployment enforces the time budget timeout_s): {}",
        "$.deployment.deployment_id",
        "$.deployment_status.summary",
    ).next(on_error)
    count_deployment = f.count("CountDeploymentPoll", "deployment", "$.deployment_status.next_poll_at")
    deployment_done = f.choice("DeploymentDone?")
    deploy.next(check_deployment).next(deployment_done)
    wait_deployment.next(check_deployment)

    def connect(verify: sfn.IChainable) -> None:
        """SUCCEEDED is tested before the poll bound, so the last poll's good answer still counts."""
        deployment_done.when(
            sfn.Condition.string_equals("$.deployment_status.status", "SUCCEEDED"), verify
        ).when(f.polls_exceeded("deployment"), deployment_timed_out).otherwise(
            count_deployment.next(wait_deployment)
        )

    return Phase(entry=deploy, connect=connect)
