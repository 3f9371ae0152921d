"""Phase ``verify``: inference proven on the devices, then the model promoted.

``VerifyOnDevice`` → ``Promote``. A deployment is good only once every device answers the golden
requests over MQTT as the ONNX model does; only then is it recorded as last known good and the
model package approved. A failure of either still leaves new versions on the devices, so it goes
to ``on_error`` (``Rollback``).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn

from pipeline.statemachine.factory import StateFactory, Target
from pipeline.statemachine.phases import Phase


def build(f: StateFactory, *, on_error: Target) -> Phase:
    verify = f.invoke(
        "VerifyOnDevice",
        "verify_on_device",
        "$.verification",
        comment="Golden requests over MQTT to every device; answers and model version compared.",
        on_error=on_error,
    )
    promote = f.invoke(
        "Promote",
        "promote",
        "$.promotion",
        comment="Records last known good; approves the model package.",
        on_error=on_error,
    )
    verify.next(promote)

    def connect(done: sfn.IChainable) -> None:
        promote.next(done)

    return Phase(entry=verify, connect=connect)
