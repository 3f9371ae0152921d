"""Create (or update) the pipeline's resources on the local cloud through the ordinary AWS APIs.

Idempotent, so a second `mlops-edge run` against the same state directory reuses the bucket,
registry and components of the first and only updates code and definition.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline.archive import deterministic_zip
from pipeline.aws import client
from pipeline.config.deployment import LAMBDA_CODE_FOLDERS
from pipeline.config.function_env import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Packages the handlers import; the local Lambda runtime puts the zip first on PYTHONPATH.
CODE_PACKAGES = LAMBDA_CODE_FOLDERS
#: Per-function timeouts (s); the others get DEFAULT_TIMEOUT_S.
TIMEOUTS_S = {"export_onnx": 300, "publish_components": 120, "verify_on_device": 180, "configure": 60}
DEFAULT_TIMEOUT_S = 60
_ASSUME = {
    "lambda": "lambda.amazonaws.com",
    "sagemaker": "sagemaker.amazonaws.com",
    "states": "states.amazonaws.com",
}


@dataclass(frozen=True)
class PipelineNames:
    """Names the pipeline is deployed under: the CDK app's own settings (``cdk.json`` context), so a
    local run and a ``cdk deploy`` name the thing group, registry, components and state machine alike."""

    thing_group: str
    model_package_group: str
    component_prefix: str
    state_machine: str
    bucket: str = "mlops-edge-artifacts"

    @property
    def function_prefix(self) -> str:
        """Function names as the CDK app gives them: ``<state machine name>-<handler>``."""
        return f"{self.state_machine}-"

    @classmethod
    def from_cdk_app(cls) -> PipelineNames:
        from pipeline.config.deployment import EdgeConfig, load_cdk_json_context

        cdk_json = REPO_ROOT / "cdk.json"
        context = load_cdk_json_context(cdk_json) if cdk_json.exists() else {}
        config = EdgeConfig.from_context(context.get)
        return cls(
            thing_group=config.thing_group_name,
            model_package_group=config.model_package_group_name,
            component_prefix=config.component_prefix,
            state_machine=config.state_machine_name,
        )


@dataclass(frozen=True)
class LocalPipeline:
    names: PipelineNames
    state_machine_arn: str
    function_arns: dict[str, str]
    sagemaker_role_arn: str

    def function_names(self) -> list[str]:
        return [arn.rsplit(":", 1)[-1] for arn in self.function_arns.values()]


def _ignore(codes: set[str], call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in codes:
            return None
        raise


def _role(iam: Any, name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    _ignore(
        {"EntityAlreadyExists"},
        lambda: iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)),
    )
    return iam.get_role(RoleName=name)["Role"]["Arn"]


def code_zip() -> bytes:
    """A deterministic zip of the handler packages (sources only), as a zip-packaged Lambda has."""
    return deterministic_zip(
        (str(path.relative_to(REPO_ROOT)), path.read_bytes())
        for package in CODE_PACKAGES
        for path in (REPO_ROOT / package).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix in {".py", ".json", ".yaml", ".txt"}
    )


def _function(
    lam: Any, name: str, *, role: str, handler: str, code: bytes, env: Mapping[str, str], timeout: int
) -> str:
    """Create the function, or update only what changed (an update replaces the warm workers)."""
    config = {
        "Role": role,
        "Handler": handler,
        "Runtime": "python3.11",
        "Timeout": timeout,
        "MemorySize": 1024,
        "Environment": {"Variables": dict(env)},
    }
    try:
        existing = lam.get_function(FunctionName=name)["Configuration"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return lam.create_function(FunctionName=name, Code={"ZipFile": code}, Publish=False, **config)[
            "FunctionArn"
        ]
    if existing.get("CodeSha256") != base64.b64encode(hashlib.sha256(code).digest()).decode():
        lam.update_function_code(FunctionName=name, ZipFile=code)
    current = {key: existing.get(key) for key in ("Role", "Handler", "Runtime", "Timeout", "MemorySize")}
    current["Environment"] = {"Variables": (existing.get("Environment") or {}).get("Variables", {})}
    if current != config:
        lam.update_function_configuration(FunctionName=name, **config)
    return existing["FunctionArn"]


def _cached_asl(cache_dir: Path, function_arns: Mapping[str, str], sagemaker_role_arn: str) -> str:
    """The ASL from the constructs, cached by the definition's source: building it costs seconds (jsii)."""
    source = hashlib.sha256()
    for path in sorted((REPO_ROOT / "pipeline" / "statemachine").glob("*.py")):
        source.update(path.read_bytes())
    source.update(json.dumps([sorted(function_arns.items()), sagemaker_role_arn]).encode())
    cached = cache_dir / f"asl-{source.hexdigest()[:16]}.json"
    if cached.exists():
        return cached.read_text()
    from pipeline.statemachine import plain_asl

    text = json.dumps(plain_asl(function_arns, sagemaker_role_arn=sagemaker_role_arn))
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(text)
    return text


def deploy_pipeline(
    names: PipelineNames,
    *,
    function_env: Mapping[str, str],
    cache_dir: Path,
    log: Callable[[str], None] = lambda _: None,
) -> LocalPipeline:
    """Bucket, roles, registry group, thing group, the functions and the state machine."""
    from pipeline.statemachine import FUNCTION_NAMES

    s3, iam, sm, iot, lam, sfn = (
        client(s) for s in ("s3", "iam", "sagemaker", "iot", "lambda", "stepfunctions")
    )
    _ignore({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}, lambda: s3.create_bucket(Bucket=names.bucket))
    s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
    lambda_role = _role(iam, "mlops-edge-lambda", _ASSUME["lambda"])
    sagemaker_role = _role(iam, "mlops-edge-sagemaker", _ASSUME["sagemaker"])
    states_role = _role(iam, "mlops-edge-states", _ASSUME["states"])
    _ignore(
        {"ValidationException", "ConflictException", "ResourceInUse"},
        lambda: sm.create_model_package_group(
            ModelPackageGroupName=names.model_package_group,
            ModelPackageGroupDescription="mlops-edge models (ONNX for Greengrass devices)",
        ),
    )
    _ignore(
        {"ResourceAlreadyExistsException"}, lambda: iot.create_thing_group(thingGroupName=names.thing_group)
    )
    log("resources: bucket, roles, model package group, thing group")

    env = {
        **Settings(
            bucket=names.bucket,
            model_package_group=names.model_package_group,
            thing_group=names.thing_group,
            component_prefix=names.component_prefix,
        ).to_env(),
        **function_env,
    }
    code = code_zip()
    arns = {
        name: _function(
            lam,
            f"{names.function_prefix}{name.replace('_', '-')}",
            role=lambda_role,
            handler=f"lambdas.{name}.handler",
            code=code,
            env=env,
            timeout=TIMEOUTS_S.get(name, DEFAULT_TIMEOUT_S),
        )
        for name in FUNCTION_NAMES
    }
    log(f"functions: {len(arns)} handlers registered through the Lambda API")

    definition = _cached_asl(cache_dir, arns, sagemaker_role)
    machines = [m for p in sfn.get_paginator("list_state_machines").paginate() for m in p["stateMachines"]]
    existing = [m["stateMachineArn"] for m in machines if m["name"] == names.state_machine]
    if existing:
        arn = existing[0]
        sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=states_role)
    else:
        arn = sfn.create_state_machine(name=names.state_machine, definition=definition, roleArn=states_role)[
            "stateMachineArn"
        ]
    log("state machine: the ASL from the CDK constructs")
    return LocalPipeline(
        names=names, state_machine_arn=arn, function_arns=arns, sagemaker_role_arn=sagemaker_role
    )


def python_for_devices() -> str:
    """The interpreter the inference component reuses locally (merged into its configuration)."""
    return sys.executable
