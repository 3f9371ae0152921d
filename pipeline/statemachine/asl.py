"""Plain ASL from the constructs, for environments that take a definition string (the local cloud).

The constructs are built into a bare stack (no ``App.synth``: no asset staging, no template), the
reachable states are rendered with ``to_state_json`` and the CloudFormation tokens CDK leaves in
them (``Fn::Join`` of the partition, ``Ref AWS::Region``) are evaluated for the given environment.
The result is the same document CloudFormation would produce from the synthesized template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipeline.statemachine import FUNCTION_NAMES
from pipeline.statemachine.definition import build_definition


def _arn_parts(arn: str) -> tuple[str, str, str]:
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1], parts[3], parts[4]


def _evaluate(value: Any, pseudo: Mapping[str, str]) -> Any:
    """Evaluates the few intrinsics ``stack.resolve`` leaves in state JSON."""
    if isinstance(value, list):
        return [_evaluate(v, pseudo) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        if value["Ref"] not in pseudo:
            raise ValueError(f"unresolved reference in ASL: {value}")
        return pseudo[value["Ref"]]
    if set(value) == {"Fn::Join"}:
        sep, items = value["Fn::Join"]
        return sep.join(str(_evaluate(i, pseudo)) for i in items)
    return {k: _evaluate(v, pseudo) for k, v in value.items()}


def plain_asl(
    function_arns: Mapping[str, str],
    *,
    sagemaker_role_arn: str,
    comment: str = "mlops-edge pipeline",
) -> dict[str, Any]:
    """The pipeline's ASL (a dict) with the given Lambda ARNs and SageMaker role.

    Region, account and partition come from the first function ARN, so the document is valid
    as-is for ``CreateStateMachine`` in that environment. ``json.dumps`` it for the API.
    """
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_stepfunctions as sfn

    missing = [name for name in FUNCTION_NAMES if name not in function_arns]
    if missing:
        raise ValueError(f"plain_asl: ARNs missing for {missing}")
    partition, region, account = _arn_parts(function_arns[FUNCTION_NAMES[0]])
    app = cdk.App()
    stack = cdk.Stack(app, "PlainAsl", env=cdk.Environment(account=account, region=region))
    functions = {
        name: lambda_.Function.from_function_arn(stack, f"Fn-{name}", arn)
        for name, arn in function_arns.items()
    }
    start = build_definition(stack, functions=functions, sagemaker_role_arn=sagemaker_role_arn)
    states = sfn.State.find_reachable_states(start, include_error_handlers=True)
    document = {
        "Comment": comment,
        "StartAt": start.state_id,
        "States": {state.state_id: state.to_state_json() for state in states},
    }
    pseudo = {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::URLSuffix": "amazonaws.com",
    }
    resolved = _evaluate(stack.resolve(document), pseudo)
    return json.loads(json.dumps(resolved))
