"""The pipeline on the local cloud: the CDK app's pipeline stack, deployed from its cloud assembly.

What ``cdk deploy`` would create is what the local run creates: the assembly is synthesized (or
given, ``--cdk-out``), its pipeline stack deployed through the local cloud's CloudFormation
(:mod:`mlops_edge.environment.cdk_deploy`), and everything the run needs is read back from the
stack: its outputs (state machine, bucket, thing group, verifier secret) and its resources (the
functions and their roles). No name is written here.

Two things the template cannot know are put where AWS keeps them: the verifier's certificate goes
into the stack's secret with PutSecretValue, as docs/deploy-aws.md tells a person to, and the
broker's endpoint is given to every function by the local Lambda runtime.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_edge.environment.assembly import Assembly, synthesize
from mlops_edge.environment.cdk_deploy import Deployed, Target, deploy_stack
from pipeline.aws import client

#: The pipeline stack is the one that declares this output (its state machine).
STATE_MACHINE_OUTPUT = "StateMachineArn"
FUNCTION_TYPE = "AWS::Lambda::Function"


@dataclass(frozen=True)
class LocalPipeline:
    """The deployed pipeline stack, as the run uses it."""

    stack: Deployed
    #: function name -> its execution role's ARN, as deployed from the template
    function_roles: dict[str, str]
    assembly: Path

    @property
    def state_machine_arn(self) -> str:
        return self.stack.outputs[STATE_MACHINE_OUTPUT]

    @property
    def bucket(self) -> str:
        return self.stack.outputs["ArtifactBucketName"]

    @property
    def thing_group(self) -> str:
        return self.stack.outputs["ThingGroupName"]

    @property
    def verifier_secret(self) -> str:
        return self.stack.outputs["VerifierSecretName"]

    def function_names(self) -> list[str]:
        return sorted(self.function_roles)


def put_verifier_certificate(secret_id: str, *, cert: Path, key: Path, ca: Path) -> bool:
    """The verifier's MQTT certificate into its secret (``aws secretsmanager put-secret-value``, as
    docs/deploy-aws.md says); only when it differs, so re-runs add no version. True if put."""
    value = json.dumps(
        {"certificate_pem": cert.read_text(), "private_key_pem": key.read_text(), "ca_pem": ca.read_text()}
    )
    secrets = client("secretsmanager")
    if secrets.get_secret_value(SecretId=secret_id).get("SecretString") == value:
        return False
    secrets.put_secret_value(SecretId=secret_id, SecretString=value)
    return True


def function_roles(stack: Deployed) -> dict[str, str]:
    lam = client("lambda")
    return {
        name: lam.get_function_configuration(FunctionName=name)["Role"]
        for name in stack.physical_ids(FUNCTION_TYPE)
    }


def deploy_pipeline(
    *,
    cache_dir: Path,
    verifier: Any,
    cdk_out: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> LocalPipeline:
    """Synthesize (cached) or take ``cdk_out``, deploy its pipeline stack, fill in the verifier's
    certificate (``verifier``: an identity with ``cert_path``, ``key_path``, ``ca_path``)."""
    from local_cloud.context import ACCOUNT_ID, REGION

    if cdk_out is None:
        synth = synthesize(cache_dir, log=log)
        log(
            f"assembly {synth.directory.name} ({'cached' if synth.cached else 'synthesized'} in {synth.seconds:.1f} s)"
        )
        directory = synth.directory
    else:
        directory = cdk_out
        log(f"assembly {directory} (given, deployed as it is)")
    assembly = Assembly.read(directory)
    artifact = assembly.stack_with_output(STATE_MACHINE_OUTPUT)
    stack = deploy_stack(client, assembly, artifact, Target(ACCOUNT_ID, REGION), log=log)
    counts: dict[str, int] = {}
    for kind, _ in stack.resources.values():
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind.split('::', 1)[1]}" for kind, n in sorted(counts.items()))
    log(f"stack {stack.stack_name} {stack.status if stack.changed else 'unchanged'}: {summary}")
    if put_verifier_certificate(
        stack.outputs["VerifierSecretName"],
        cert=verifier.cert_path,
        key=verifier.key_path,
        ca=verifier.ca_path,
    ):
        log("verifier certificate put in its secret (put-secret-value)")
    return LocalPipeline(stack=stack, function_roles=function_roles(stack), assembly=assembly.directory)


def python_for_devices() -> str:
    """The interpreter the inference component reuses locally (merged into its configuration)."""
    return sys.executable
