"""Phase ``package``: the model and inference components, published and DEPLOYABLE.

``PublishComponents`` → ``ComponentsDeployable?`` ⟲ ``WaitComponents`` → ``CheckComponents``.
Greengrass validates a new component version asynchronously; deploying one that is not yet
DEPLOYABLE fails on the devices, so the phase waits (bounded) before it hands on. Reused versions
are DEPLOYABLE at once and skip the loop. Both functions say when to check next
(``next_poll_at``: the back-off of ``poll.components``), which the Wait waits until. No device is
touched yet: errors go to ``on_error``.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory, Target
from pipeline.statemachine.phases import Phase


def build(f: StateFactory, *, on_error: Target) -> Phase:
    publish = f.invoke(
        "PublishComponents",
        "publish_components",
        "$.components",
        comment="Model and inference components; existing identical versions are reused.",
        on_error=on_error,
    )
    wait_components = f.wait("WaitComponents", "components", until=True)
    check_components = f.invoke(
        "CheckComponents", "check_components", "$.components", comment="DEPLOYABLE yet?", on_error=on_error
    )
    components_timed_out = f.error(
        "ComponentsTimedOutError",
        "ComponentsTimedOut",
        "Component versions {} {} / {} {} not DEPLOYABLE after the maximum number of polls.",
        "$.components.model.name",
        "$.components.model.version",
        "$.components.inference.name",
        "$.components.inference.version",
    ).next(on_error)
    count_components = f.count("CountComponentsPoll", "components", "$.components.next_poll_at")
    components_ready = f.choice("ComponentsDeployable?")
    publish.next(components_ready)
    wait_components.next(check_components).next(components_ready)

    def connect(deploy: sfn.IChainable) -> None:
        """DEPLOYABLE is tested before the poll bound, so the last poll's good answer still counts."""
        components_ready.when(sfn.Condition.boolean_equals("$.components.deployable", True), deploy).when(
            f.polls_exceeded("components"), components_timed_out
        ).otherwise(count_components.next(wait_components))

    return Phase(entry=publish, connect=connect)
