"""Per-environment settings of a deployment: the names the CDK app deploys and the tools look up.

One home below both sides: ``infra/`` builds its stacks from :class:`EdgeConfig` (read once in
`app.py` and passed down as keyword arguments), and the operator's tools find the state machine,
thing group and registry by the same names, so neither side reaches up into the other.

Values come from CDK context (``cdk.json``, ``-c key=value``), then from ``MLOPS_EDGE_<KEY>``
environment variables, then from the defaults below. ``python app.py`` does not read ``cdk.json``
itself (only the CDK CLI does), so ``app.py`` loads it with :func:`load_cdk_json_context` and hands
the result to ``App(context=...)``: the same values whichever way the app is run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

SourceKind = Literal["codestar", "codecommit"]

#: Folders of the repository the Lambda code is made of (the image's build context, the zip asset and
#: the local cloud's code zip alike): the library and the handlers, never the operator's tools,
#: ``infra`` or the local cloud (tests/unit/test_architecture.py holds them to it).
LAMBDA_CODE_FOLDERS = ("pipeline", "lambdas", "components", "edge_runtime")

#: The state machine's fixed name: the tools (`mlops_edge/commands/common.py`) find it by this name.
STATE_MACHINE_NAME = "mlops-edge-pipeline"


def function_name(prefix: str, handler: str) -> str:
    """A pipeline function's name: ``<state machine name>-<handler with dashes>``, as the CDK app
    names it and the tools look it up (``mlops-edge logs export_onnx``)."""
    return f"{prefix}-{handler.replace('_', '-')}"


@dataclass(frozen=True, kw_only=True)
class EdgeConfig:
    """Everything that differs between one deployment of mlops-edge and another."""

    #: Account and region; empty means environment-agnostic (synthesizes with no account at all).
    account: str = ""
    region: str = ""
    #: Prefix of every stack name, so two copies can live side by side in one account.
    stack_prefix: str = "MlopsEdge"
    #: Where the pipeline's own source comes from: a CodeStar (CodeConnections) connection to
    #: GitHub/GitLab/Bitbucket, or a CodeCommit repository.
    source: SourceKind = "codestar"
    connection_arn: str = ""
    repository: str = "example-org/mlops-edge"
    branch: str = "main"
    codecommit_repository: str = "mlops-edge"
    #: Greengrass fleet: the thing group deployments target and the EC2 core's own thing name.
    thing_group_name: str = "mlops-edge-fleet"
    thing_name: str = "mlops-edge-core-1"
    #: Greengrass component names start with this prefix (`<prefix>.Model`, `<prefix>.Inference`).
    component_prefix: str = "com.example.mlopsedge"
    model_package_group_name: str = "mlops-edge-models"
    state_machine_name: str = STATE_MACHINE_NAME
    #: EC2 instance type of the simulated edge device; t3.small fits nucleus + onnxruntime.
    instance_type: str = "t3.small"
    #: AMI of the EC2 core (``ami-...``, in the deployment's region). Empty: the latest Amazon
    #: Linux 2023 AMI, looked up once at synth and kept in ``cdk.context.json`` (see
    #: docs/deploy-aws.md): a new AMI must never replace, and so re-provision, the device unasked.
    ami_id: str = ""
    #: Greengrass nucleus release installed on the instance ("latest" or e.g. "2.14.3").
    nucleus_version: str = "latest"
    training_instance_type: str = "ml.m5.large"
    #: ARN of the AWS IoT certificate verify_on_device connects with (made once by hand, see
    #: docs/deploy-aws.md); when set, the stack attaches the verifier's IoT policy to it.
    verifier_certificate_arn: str = ""
    #: Days CloudWatch keeps logs of Lambdas, the state machine, flow logs and builds.
    log_retention_days: int = 30
    #: Tags put on every resource.
    tags: Mapping[str, str] = field(default_factory=lambda: {"project": "mlops-edge"})

    @property
    def canary_thing_group_name(self) -> str:
        """The canary thing group a share-of-fleet rollout stage moves devices into."""
        return f"{self.thing_group_name}-canary"

    @property
    def tes_role_name(self) -> str:
        """Name of the Greengrass token exchange role; the installer is told it by name."""
        return f"{self.thing_group_name}-TokenExchangeRole"

    @property
    def tes_role_alias_name(self) -> str:
        """Name of the IoT role alias pointing at the token exchange role."""
        return f"{self.tes_role_name}Alias"

    @property
    def thing_policy_name(self) -> str:
        """Name of the IoT policy the installer attaches to the core's certificate."""
        return f"{self.thing_group_name}-core-policy"

    @classmethod
    def from_context(cls, get: Any, environ: Mapping[str, str] | None = None) -> EdgeConfig:
        """Build from a context getter (``app.node.try_get_context``), then environment, then defaults.

        Context keys are the field names; environment variables are ``MLOPS_EDGE_`` plus the
        upper-cased field name (e.g. ``MLOPS_EDGE_CONNECTION_ARN``). Account and region fall back
        to ``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION``, which the CDK CLI sets from the
        caller's credentials.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = get(f.name)
            if raw is None:
                raw = env.get(f"MLOPS_EDGE_{f.name.upper()}")
            if raw is None and f.name in ("account", "region"):
                raw = env.get(f"CDK_DEFAULT_{f.name.upper()}")
            if raw is None:
                continue
            if f.name == "log_retention_days":
                raw = int(raw)
            elif f.name == "tags" and isinstance(raw, str):
                raw = json.loads(raw)
            values[f.name] = raw
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Fail early, with the setting's name, on values CloudFormation would reject much later."""
        if self.source not in ("codestar", "codecommit"):
            raise ValueError(f"context 'source' must be 'codestar' or 'codecommit', not {self.source!r}")
        if self.source == "codestar" and "/" not in self.repository:
            raise ValueError(
                f"context 'repository' must be 'owner/name' for a CodeStar source: {self.repository!r}"
            )
        if not self.component_prefix or self.component_prefix.endswith("."):
            raise ValueError(f"context 'component_prefix' must be a dotted name: {self.component_prefix!r}")
        if self.ami_id and not re.fullmatch(r"ami-[0-9a-f]{8,17}", self.ami_id):
            raise ValueError(
                f"context 'ami_id' must be an AMI id like 'ami-0123456789abcdef0': {self.ami_id!r}"
            )

    def to_context(self) -> dict[str, str]:
        """Every setting as a ``-c key=value`` string, so that :meth:`from_context` reads back this
        same configuration (the CI/CD stack hands it to its own synth)."""
        values: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = json.dumps(dict(value), sort_keys=True) if f.name == "tags" else str(value)
        return values


def load_cdk_json_context(path: Path) -> dict[str, Any]:
    """The ``context`` object of ``cdk.json``, so ``python app.py`` sees what ``cdk synth`` sees."""
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("context", {}))
