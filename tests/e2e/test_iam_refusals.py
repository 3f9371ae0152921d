"""Local green means AWS green for IAM: take one permission the run really uses out of the
synthesized template, deploy that assembly as it is (what ``mlops-edge run --cdk-out`` does), and
the execution fails at the state whose role lost it, with AWS's AccessDenied cause naming the
action. Three functions' roles and the state machine's role, each failing before any device is
needed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from local_cloud import LocalCloud
from mlops_edge.environment.assembly import Assembly
from mlops_edge.environment.deploy import STATE_MACHINE_OUTPUT, LocalPipeline, deploy_pipeline
from mlops_edge.environment.run_data import demo_data, upload
from mlops_edge.environment.run_options import RunOptions, execution_input
from mlops_edge.report.follow import follow_execution
from mlops_edge.report.history import ExecutionProgress
from mlops_edge.report.live import PlainView

pytestmark = pytest.mark.e2e

#: (role of, action taken away, state where the execution must fail). Each action is one the
#: run's report lists as used by that role.
CASES = [
    ("state machine", "sagemaker:CreateTrainingJob", "StartTraining"),
    ("export_onnx", "s3:PutObject", "ExportOnnx"),  # (a refused HEAD has no body: AWS says only "Forbidden")
    ("register_model", "sagemaker:CreateModelPackage", "RegisterModel"),
    ("publish_components", "greengrass:CreateComponentVersion", "PublishComponents"),
]


def _stack_template(assembly: Path) -> Path:
    """The pipeline stack's template: the stack the run deploys, found as the run finds it."""
    return Assembly.read(assembly).stack_with_output(STATE_MACHINE_OUTPUT).template_path


def _role_id(template: dict[str, Any], role_of: str) -> str:
    """Logical id of the role of a pipeline function (by its handler) or of the state machine."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if role_of == "state machine" and resource["Type"] == "AWS::StepFunctions::StateMachine":
            return props["RoleArn"]["Fn::GetAtt"][0]
        name = str(props.get("FunctionName", ""))
        if resource["Type"] == "AWS::Lambda::Function" and name.endswith(role_of.replace("_", "-")):
            return props["Role"]["Fn::GetAtt"][0]
    raise AssertionError(f"no role for {role_of} in the template")


def without_action(assembly: Path, out: Path, role_of: str, action: str) -> Path:
    """A copy of ``assembly`` whose ``role_of`` role no longer holds ``action`` anywhere."""
    shutil.copytree(assembly, out)
    path = _stack_template(out)
    template = json.loads(path.read_text())
    role = _role_id(template, role_of)
    removed = 0
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::IAM::Policy" or {"Ref": role} not in props.get("Roles", []):
            continue
        kept = []
        for statement in props["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            left = [a for a in actions if a != action]
            removed += len(actions) - len(left)
            if left:
                kept.append({**statement, "Action": left if len(left) > 1 else left[0]})
        props["PolicyDocument"]["Statement"] = kept
    assert removed, f"{role_of}'s role does not hold {action}: the case tests nothing"
    path.write_text(json.dumps(template, indent=1))
    return out


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state_dir = tmp_path_factory.mktemp("iam-refusals")
    saved = dict(os.environ)
    environment = {k: v for k, v in os.environ.items() if k != "MLOPS_EDGE_IAM"}  # the default: enforce
    os.environ.clear()
    os.environ.update(environment)
    try:
        with LocalCloud(state_dir / "cloud") as running:
            os.environ.update(running.env())
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _deploy(cloud: LocalCloud, assembly: Path, cache: Path) -> LocalPipeline:
    return deploy_pipeline(cache_dir=cache, verifier=cloud.pipeline_identity, cdk_out=assembly)


def _run(cloud: LocalCloud, pipeline: LocalPipeline, data_dir: Path) -> ExecutionProgress:
    data = demo_data("diabetes", data_dir)
    dataset = upload(cloud.client("s3"), pipeline.bucket, data)
    document = execution_input(RunOptions(hyperparameters={"num_round": 10}), dataset, python=sys.executable)
    sfn = cloud.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=pipeline.state_machine_arn,
        name=f"iam-{uuid.uuid4().hex[:8]}",
        input=json.dumps(document),
    )["executionArn"]
    quiet = Console(file=open(os.devnull, "w"), force_terminal=False)  # noqa: SIM115
    return follow_execution(sfn, arn, PlainView(quiet), timeout_s=300)


@pytest.mark.parametrize(("role_of", "action", "state"), CASES, ids=[c[0] for c in CASES])
def test_a_permission_taken_out_of_the_template_fails_the_run_where_aws_would(
    cloud: LocalCloud, cdk_assembly: Any, tmp_path: Path, role_of: str, action: str, state: str
) -> None:
    assembly = without_action(Path(cdk_assembly.directory), tmp_path / "cdk.out", role_of, action)
    pipeline = _deploy(cloud, assembly, tmp_path / "cache")
    try:
        progress = _run(cloud, pipeline, tmp_path / "data")
        assert progress.status == "FAILED"
        assert progress.failed_state == state, (progress.failed_state, progress.cause)
        assert f"is not authorized to perform: {action}" in (progress.cause or ""), progress.cause
        assert "assumed-role/" in (progress.cause or "")
    finally:  # the next case starts from the stack as synthesized
        _deploy(cloud, Path(cdk_assembly.directory), tmp_path / "cache")
