"""The pipeline's Lambda functions: one per handler module in ``lambdas/``.

Two packagings, chosen per handler in :data:`SPECS`:

- **image**: handlers that need the ML stack (xgboost, onnx, onnxruntime, MQTT clients) run from
  one container image built from ``lambdas/Dockerfile``. ``DockerImageCode.from_image_asset`` only
  stages the build context at synth; the image is built at ``cdk deploy`` (no Docker to synth).
- **zip**: light handlers (boto3 and the standard library only) run on the managed Python 3.11
  runtime from a plain ``Code.from_asset`` of the repository's code folders, without bundling.

Every function gets its own role and its own log group with a retention, so the stack can grant
each one exactly what it needs (see ``infra/permissions.py``) and no AWS managed policy is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline.config.deployment import LAMBDA_CODE_FOLDERS
from pipeline.config.deployment import function_name as pipeline_function_name

#: The repository root, found from this file (asset paths never depend on the working directory).
REPO_ROOT = Path(__file__).resolve().parents[1]

#: Folders of the repository the Lambda code needs (image build context and zip asset alike).
CODE_FOLDERS = LAMBDA_CODE_FOLDERS

#: Excluded from both the image build context and the zip, whatever folder they are in.
_NOISE = ("**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.ruff_cache")

Packaging = Literal["image", "zip"]


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """How one handler is packaged and sized."""

    packaging: Packaging
    memory_mb: int = 512
    timeout_s: int = 60


#: Known handlers. A handler not listed here is packaged as an image: that always has every
#: dependency, so a new handler works before anyone tunes it.
SPECS: dict[str, FunctionSpec] = {
    # configure validates the input with jsonschema, which the managed runtime lacks.
    "configure": FunctionSpec(packaging="image", memory_mb=512, timeout_s=60),
    "export_onnx": FunctionSpec(packaging="image", memory_mb=3008, timeout_s=600),
    "register_model": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=60),
    "publish_components": FunctionSpec(packaging="image", memory_mb=1024, timeout_s=300),
    # check_components shares lambdas.core.components with publish_components, which needs PyYAML.
    "check_components": FunctionSpec(packaging="image", memory_mb=512, timeout_s=60),
    # deploy moves a share-of-fleet stage's canaries (two IoT calls per device) before it deploys;
    # 60 s ran out in 2 of 5 local 100-device runs while 90 devices installed at once.
    "deploy": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=300),
    "check_deployment": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=60),
    "verify_on_device": FunctionSpec(packaging="image", memory_mb=1024, timeout_s=300),
    "evaluate_stage": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=60),
    "promote": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=60),
    "rollback": FunctionSpec(packaging="zip", memory_mb=256, timeout_s=60),
}
DEFAULT_SPEC = FunctionSpec(packaging="image", memory_mb=1024, timeout_s=300)


def spec_for(name: str) -> FunctionSpec:
    """The packaging and size of handler ``name``."""
    return SPECS.get(name, DEFAULT_SPEC)


class PipelineFunctions(Construct):
    """One Lambda function per handler, with its own role and log group.

    Attributes:
        functions: handler name -> function.
        roles: handler name -> the function's execution role (grant to these).
        log_groups: handler name -> the function's log group.
        image: the shared container image asset (None when every handler is a zip).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Iterable[str],
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        function_name_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        names = list(names)
        zip_code = _zip_code() if any(spec_for(n).packaging == "zip" for n in names) else None
        # One image asset for every image function (one build context fingerprint, one image);
        # each function only sets its own command.
        self.image = _image_asset(self) if any(spec_for(n).packaging == "image" for n in names) else None

        for name in names:
            spec = spec_for(name)
            construct_name = "".join(part.capitalize() for part in name.split("_"))
            function_name = pipeline_function_name(function_name_prefix, name)
            log_group = logs.LogGroup(
                self,
                f"{construct_name}Logs",
                log_group_name=f"/aws/lambda/{function_name}",
                retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            role = iam.Role(
                self,
                f"{construct_name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"mlops-edge Lambda {name}",
            )
            # Only its own log group: the managed AWSLambdaBasicExecutionRole would allow any.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
            common = {
                "function_name": function_name,
                "role": role,
                "memory_size": spec.memory_mb,
                "timeout": Duration.seconds(spec.timeout_s),
                "environment": dict(environment),
                "log_group": log_group,
                "tracing": lambda_.Tracing.ACTIVE,
                "architecture": lambda_.Architecture.X86_64,
                "description": f"mlops-edge pipeline step: {name}",
            }
            if spec.packaging == "zip":
                function: lambda_.Function = lambda_.Function(
                    self,
                    construct_name,
                    runtime=lambda_.Runtime.PYTHON_3_11,
                    handler=f"lambdas.{name}.handler",
                    code=zip_code,
                    **common,
                )
            else:
                assert self.image is not None
                code = lambda_.DockerImageCode.from_ecr(
                    self.image.repository, tag_or_digest=self.image.image_tag, cmd=[f"lambdas.{name}.handler"]
                )
                function = lambda_.DockerImageFunction(self, construct_name, code=code, **common)
            self.functions[name] = function
            self.roles[name] = role
            self.log_groups[name] = log_group


def _zip_code() -> lambda_.Code:
    """The code folders of the repository as a zip asset, no bundling (stdlib + boto3 handlers)."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        exclude=["*", *(f"!{folder}" for folder in CODE_FOLDERS), *_NOISE],
        ignore_mode=IgnoreMode.DOCKER,
    )


def _image_asset(scope: Construct) -> ecr_assets.DockerImageAsset:
    """The ML image built from ``lambdas/Dockerfile`` with the code folders as build context.

    Staged at synth (a copy of the four folders under cdk.out); built and pushed by ``cdk deploy``.
    """
    return ecr_assets.DockerImageAsset(
        scope,
        "Image",
        directory=str(REPO_ROOT),
        file="lambdas/Dockerfile",
        platform=ecr_assets.Platform.LINUX_AMD64,
        exclude=["*", *(f"!{folder}" for folder in CODE_FOLDERS), *_NOISE],
        ignore_mode=IgnoreMode.DOCKER,
    )
