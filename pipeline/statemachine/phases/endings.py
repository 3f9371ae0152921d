"""States shared by phases as their ends: failure before Deploy, rollback after it, success.

The line between them is whether devices were touched: before Deploy a failure only needs a
cause a person can act on (``PipelineFailed``); from Deploy on, the thing group must get its last
known good set back first (``Rollback``), and a failed rollback is its own, louder failure.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory


def pipeline_failed(f: StateFactory) -> sfn.Fail:
    """Error handler of ``prepare`` and ``package``; reports the ``$.error`` a Catch or Pass set."""
    return sfn.Fail(
        f.scope,
        f.id("PipelineFailed"),
        state_name="PipelineFailed",
        comment="Failed before anything was deployed; the devices were not touched.",
        error_path="$.error.Error",
        cause_path="$.error.Cause",
    )


def rollback(f: StateFactory) -> sfn.State:
    """Error handler of ``deploy`` and ``verify``: ``Rollback`` → ``RolledBack`` | ``RollbackFailed``.

    The rollback's own error goes to ``$.rollback_error`` so ``$.error``, the failure that started
    it, survives for the cause of ``RollbackFailed``.
    """
    rolled_back = sfn.Fail(
        f.scope,
        f.id("RolledBack"),
        state_name="RolledBack",
        comment="Deployment or verification failed; the thing group was given its last known good set.",
        error_path="$.rollback.error",
        cause_path="$.rollback.cause",
    )
    rollback_failed = sfn.Fail(
        f.scope,
        f.id("RollbackFailed"),
        state_name="RollbackFailed",
        comment="The rollback itself failed: devices may run the failed versions. Act now.",
        error="RollbackFailed",
        cause_path=sfn.JsonPath.format(
            "Rollback failed ({}) after: {}",
            sfn.JsonPath.string_at("$.rollback_error.Cause"),
            sfn.JsonPath.string_at("$.error.Cause"),
        ),
    )
    task = f.invoke(
        "Rollback",
        "rollback",
        "$.rollback",
        comment="Redeploys last known good to the stages' groups that got the new version, only those.",
        on_error=rollback_failed,
        error_path="$.rollback_error",
    )
    # The final stage rows (the stopping stage FAILED, later ones SKIPPED) where the report reads them.
    rows = sfn.Pass(
        f.scope,
        f.id("RolloutStopped"),
        state_name="RolloutStopped",
        input_path="$.rollback.rollout",
        result_path="$.rollout",
    )
    task.next(rows).next(rolled_back)
    return task


def succeeded(f: StateFactory) -> sfn.Succeed:
    return sfn.Succeed(f.scope, f.id("PipelineSucceeded"), state_name="PipelineSucceeded")
