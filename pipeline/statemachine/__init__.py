"""The pipeline's Step Functions state machine, defined once with CDK constructs.

``build_definition`` builds the states into a CDK scope (infra uses it); ``plain_asl`` returns the
same definition as a plain ASL dict for the local cloud; ``PipelineStateMachine`` is the state
machine resource with logging and tracing. Imports of CDK happen on first use, so importing this
package stays cheap for code that only needs ``FUNCTION_NAMES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.statemachine.errors import HANDLER_ERRORS
from pipeline.statemachine.node import use_bundled_node

# Before anything below can import aws_cdk: jsii on the bundled Node 24 (no end-of-life banner).
use_bundled_node()

FUNCTION_NAMES: tuple[str, ...] = (
    "configure",
    "export_onnx",
    "register_model",
    "publish_components",
    "check_components",
    "deploy",
    "check_deployment",
    "verify_on_device",
    "evaluate_stage",
    "promote",
    "rollback",
)

__all__ = ["FUNCTION_NAMES", "HANDLER_ERRORS", "PipelineStateMachine", "build_definition", "plain_asl"]

if TYPE_CHECKING:
    from pipeline.statemachine.asl import plain_asl
    from pipeline.statemachine.construct import PipelineStateMachine
    from pipeline.statemachine.definition import build_definition


def __getattr__(name: str) -> Any:
    if name == "plain_asl":
        from pipeline.statemachine.asl import plain_asl

        return plain_asl
    if name == "build_definition":
        from pipeline.statemachine.definition import build_definition

        return build_definition
    if name == "PipelineStateMachine":
        from pipeline.statemachine.construct import PipelineStateMachine

        return PipelineStateMachine
    raise AttributeError(name)
