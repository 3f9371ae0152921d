"""The pipeline on the local cloud: the CDK app's pipeline stack, deployed from its cloud assembly.

What ``cdk deploy`` would create is what the local run creates: the assembly is synthesized (or
given, ``--cdk-out``), its pipeline stack deployed through the local cloud's CloudFormation
(:mod:`mlops_edge.environment.cdk_deploy`), and everything the run needs is read back from the
stack: its outputs (state machine, bucket, thing group, verifier secret) and its resources (the
functions and their roles). No name is written here.

Two things the template cannot know are put where AWS keeps them: the verifier's certificate goes
into the stack's secret with PutSecretValue, as docs/deploy-aws.md tells a person to, and the
broker's endpoint is given to every function by the local Lambda runtime.

A warm run deploys the same assembly again: when the deployed stack is in a complete state and its
template (GetTemplate) and tags are the assembly's, nothing is deployed (no bootstrap, no asset
publishing, no UpdateStack), as ``cdk deploy`` skips a stack whose template did not change. The
template names every asset by its content hash, so an equal template means equal assets.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_edge.environment.assembly import Assembly, StackArtifact, synthesize
from mlops_edge.environment.cdk_deploy import Deployed, Target, deploy_stack
from pipeline.aws import client

#: The pipeline stack is the one that declares this output (its state machine).
STATE_MACHINE_OUTPUT = "StateMachineArn"
FUNCTION_TYPE = "AWS::Lambda::Function"
#: A stack in one of these states holds what its template says (a failed one does not).
_COMPLETE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


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


def _environment_fits(stack: StackArtifact, target: Target) -> bool:
    """Whether the artifact may deploy to ``target`` at all (``deploy_stack`` says why not)."""
    account, _, region = stack.environment.removeprefix("aws://").partition("/")
    return account in ("unknown-account", target.account) and region in ("unknown-region", target.region)


def unchanged_stack(cfn: Any, stack: StackArtifact) -> Deployed | None:
    """The deployed stack when deploying ``stack`` again would change nothing, else None.

    Unchanged means: the stack exists in a complete state, its tags are the artifact's and its
    template (GetTemplate, ``Original``) equals the artifact's as JSON. That is what ``cdk deploy``
    compares before it skips a stack; CloudFormation would answer "No updates are to be performed"
    to the UpdateStack, but only after the bootstrap, the asset publishing and the call itself.
    """
    name = stack.stack_name
    try:
        described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    if described["StackStatus"] not in _COMPLETE:
        return None
    tags = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
    if tags != {k: str(v) for k, v in (stack.properties.get("tags") or {}).items()}:
        return None
    body = cfn.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    deployed = json.loads(body) if isinstance(body, str) else json.loads(json.dumps(body))
    if deployed != stack.template():
        return None
    return Deployed.read(cfn, described, changed=False)


def deploy_if_changed(
    client: Callable[[str], Any],
    assembly: Assembly,
    stack: StackArtifact,
    target: Target,
    *,
    log: Callable[[str], None] = lambda _: None,
) -> Deployed:
    """``deploy_stack`` unless :func:`unchanged_stack` finds the same stack deployed already."""
    if _environment_fits(stack, target):
        same = unchanged_stack(client("cloudformation"), stack)
        if same is not None:
            log(f"stack {same.stack_name}: template and tags as deployed, nothing to update")
            return same
    return deploy_stack(client, assembly, stack, target, log=log)


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
    stack = deploy_if_changed(client, assembly, artifact, Target(ACCOUNT_ID, REGION), log=log)
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
