"""Phase ``verify``: each rollout stage proven and weighed, the next stage started, then promotion.

``VerifyStage?`` → ``VerifyOnDevice`` (the stage's devices, all at once; skipped when the stage
says ``verify: false``) → ``EvaluateStage`` → ``StageDone?``: a stage whose failed share is over
its threshold stops the rollout (``StageFailed`` → ``on_error``, ``Rollback``); another stage
follows while ``$.rollout.index`` < ``$.rollout.count`` (the loop's bound, kept in the state:
EvaluateStage advances the index only for a stage that passed) after ``Bake`` (a Wait of the
stage's ``bake_s``) and ``NextStage`` (the deployment poll count starts again) back to Deploy;
after the last stage ``Promote`` records last known good for every stage's group and approves
the model. A failure of any of them leaves new versions on devices, so it goes to ``on_error``.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory, Target
from pipeline.statemachine.phases import Phase


def build(f: StateFactory, *, on_error: Target, next_stage: Target) -> Phase:
    """``next_stage`` is where a stage that passed hands on when more stages follow (Deploy)."""
    verify = f.invoke(
        "VerifyOnDevice",
        "verify_on_device",
        "$.verification",
        comment="Golden requests over MQTT to the stage's devices; answers and model version compared.",
        on_error=on_error,
    )
    evaluate = f.invoke(
        "EvaluateStage",
        "evaluate_stage",
        "$.rollout",
        comment="Failed share of the stage against its threshold; writes the stage's row.",
        on_error=on_error,
    )
    promote = f.invoke(
        "Promote",
        "promote",
        "$.promotion",
        comment="Records last known good of every stage's thing group; approves the model package.",
        on_error=on_error,
    )
    stage_failed = f.error("StageFailedError", "StageFailed", "{}", "$.rollout.cause").next(on_error)
    bake = sfn.Wait(
        f.scope, f.id("Bake"), state_name="Bake", time=sfn.WaitTime.seconds_path("$.rollout.bake_s")
    )
    next_deployment = sfn.Pass(
        f.scope,
        f.id("NextStage"),
        state_name="NextStage",
        comment="The next stage's deployment loop counts its polls from zero.",
        parameters={"count": 0},
        result_path="$.polls.deployment",
    )
    bake.next(next_deployment).next(next_stage)
    verify.next(evaluate)
    evaluate.next(
        f.choice("StageDone?")
        .when(sfn.Condition.boolean_equals("$.rollout.passed", False), stage_failed)
        .when(sfn.Condition.number_less_than_json_path("$.rollout.index", "$.rollout.count"), bake)
        .otherwise(promote)
    )
    entry = (
        f.choice("VerifyStage?")
        .when(sfn.Condition.boolean_equals("$.deployment.verify", True), verify)
        .otherwise(evaluate)
    )

    def connect(done: sfn.IChainable) -> None:
        promote.next(done)

    return Phase(entry=entry, connect=connect)
