"""The pipeline's state machine, built from CDK Step Functions constructs, phase by phase.

One definition serves both infrastructures: CDK synthesizes it for AWS, and :func:`plain_asl`
(``pipeline.statemachine.asl``) turns the same constructs into plain ASL for the local cloud. The
rules of DESIGN.md shape it: SageMaker training is request/response plus a bounded poll loop (no
``.sync``); greengrassv2/iot calls live in Lambdas; every Task retries transient errors with
backoff and catches the handlers' typed errors before ``States.ALL``; every loop is bounded by a
counter kept in the state; result selectors keep only what later states read (no datetimes).
Those rules are applied once, in ``factory``; each phase (``phases/``) makes and wires its own
states, and this module only connects the phases and their error handlers.

State document (``$``) as the execution runs::

    config       normalized execution input (Configure)
    polls        {"training": {"count"}, "components": {"count", "wait_until"}, "deployment": {...}}
    training     {"arn", "state": {"status", "secondary_status"}, "failure"?}
    model        exported ONNX artifact (ExportOnnx)
    registry     model package + the model artifact it points to (RegisterModel)
    components   component names/versions, reused flags, deployable (PublishComponents/Check)
    rollout      {"index", "count", "stages": [row, ...], ...}: the stage loop (Configure, EvaluateStage)
    deployment   the stage's deployment id, thing group, device count, S3 URI of its targets (Deploy)
    deployment_status  status, counts, up to ten unfinished devices, S3 URI of all (CheckDeployment)
    verification passed, counts, S3 URI of every device's result (VerifyOnDevice)
    promotion    last known good record (Promote)
    error        {"Error", "Cause"} from a Catch or a Pass that names the failure
    rollback     {"error", "cause", ...} (Rollback)

Per-device detail never enters the document (``detail``: S3 under the execution's state prefix),
so its size does not depend on the fleet's (Step Functions' limit is 256 KiB per state).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.statemachine.factory import StateFactory
from pipeline.statemachine.phases import deploy, endings, package, prepare, verify


def _build(f: StateFactory) -> sfn.State:
    """Whether devices were touched decides the error handler: before Deploy, fail; after, roll back."""
    pipeline_failed = endings.pipeline_failed(f)
    rollback = endings.rollback(f)
    prepared = prepare.build(f, on_error=pipeline_failed)
    packaged = package.build(f, on_error=pipeline_failed)
    deployed = deploy.build(f, on_error=rollback)
    verified = verify.build(f, on_error=rollback, next_stage=deployed.entry)
    prepared.connect(packaged.entry)
    packaged.connect(deployed.entry)
    deployed.connect(verified.entry)
    verified.connect(endings.succeeded(f))
    return prepared.entry


def build_definition(
    scope: Construct,
    *,
    functions: Mapping[str, lambda_.IFunction],
    sagemaker_role_arn: str,
    id_prefix: str = "",
) -> sfn.State:
    """Builds every state into ``scope`` and returns the start state (``Configure``).

    ``functions`` maps each of :data:`FUNCTION_NAMES` to a Lambda; ``sagemaker_role_arn`` is the
    execution role the training job runs with. ``id_prefix`` keeps construct ids unique when two
    definitions share a scope. Keep the returned state: ``DefinitionBody.from_chainable(start)``
    for a ``StateMachine``, ``State.find_reachable_states(start, include_error_handlers=True)``
    for the plain ASL (see :func:`pipeline.statemachine.asl.plain_asl`).
    """
    return _build(StateFactory(scope, functions, sagemaker_role_arn, id_prefix))
