"""A warm run deploys the same assembly again: an unchanged stack is not deployed a second time.

``mlops_edge.environment.deploy.deploy_if_changed`` on the shared local cloud, with a one-resource
assembly written here: the second deploy of the same assembly makes no CreateStack/UpdateStack
(and publishes nothing), a changed template or tag does update, and a deleted stack is created
again. The calls are counted on the boto3 clients the deploy uses.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from local_cloud import LocalCloud
from local_cloud.context import ACCOUNT_ID, REGION
from mlops_edge.environment.assembly import Assembly
from mlops_edge.environment.cdk_deploy import Target
from mlops_edge.environment.deploy import deploy_if_changed, unchanged_stack

pytestmark = pytest.mark.integration
WRITES = ("CreateStack", "UpdateStack", "DeleteStack", "PutObject", "CreateBucket")


class CountingClients:
    """``client(service)`` for the local cloud that counts every API call by operation name."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.calls: Counter[str] = Counter()

    def __call__(self, service: str) -> Any:
        client = self.cloud.client(service)
        client.meta.events.register("before-call", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def writes(self) -> dict[str, int]:
        return {name: n for name, n in self.calls.items() if name in WRITES}


def _assembly(root: Path, name: str, *, retention: int, tags: dict[str, str]) -> Assembly:
    """A cloud assembly of one stack (one log group), as ``cdk synth`` lays one out."""
    root.mkdir(parents=True, exist_ok=True)
    template = {
        "Resources": {
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": f"/it/deploy-unchanged/{name}", "RetentionInDays": retention},
            }
        },
        "Outputs": {"GroupName": {"Value": {"Ref": "Group"}}},
    }
    (root / "S.template.json").write_text(json.dumps(template))
    manifest = {
        "version": "36.0.0",
        "artifacts": {
            "S": {
                "type": "aws:cloudformation:stack",
                "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": "S.template.json", "stackName": name, "tags": tags},
            }
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return Assembly.read(root)


def _deploy(clients: CountingClients, assembly: Assembly) -> Any:
    clients.calls.clear()
    (stack,) = assembly.stacks()
    return deploy_if_changed(clients, assembly, stack, Target(ACCOUNT_ID, REGION))


def test_an_unchanged_stack_is_not_deployed_again_a_changed_one_is(
    local_cloud: LocalCloud, tmp_path: Path
) -> None:
    clients = CountingClients(local_cloud)
    name = f"it-unchanged-{uuid.uuid4().hex[:8]}"
    first = _assembly(tmp_path / "a", name, retention=7, tags={"project": "p"})
    created = _deploy(clients, first)
    assert clients.writes()["CreateStack"] == 1 and created.changed and created.status == "CREATE_COMPLETE"

    again = _deploy(clients, _assembly(tmp_path / "copy", name, retention=7, tags={"project": "p"}))
    assert clients.writes() == {}, "the same template and tags: no CreateStack/UpdateStack, nothing put"
    assert not again.changed and again.published == []
    assert (again.stack_id, again.resources, again.outputs) == (
        created.stack_id,
        created.resources,
        created.outputs,
    )

    updated = _deploy(clients, _assembly(tmp_path / "b", name, retention=14, tags={"project": "p"}))
    assert clients.writes().get("UpdateStack") == 1 and updated.status == "UPDATE_COMPLETE"
    _deploy(clients, _assembly(tmp_path / "c", name, retention=14, tags={"project": "q"}))
    assert clients.writes().get("UpdateStack") == 1, "other tags: the stack is updated, not skipped"

    cfn = local_cloud.client("cloudformation")
    cfn.delete_stack(StackName=name)
    (stack,) = _assembly(tmp_path / "d", name, retention=14, tags={"project": "q"}).stacks()
    assert unchanged_stack(cfn, stack) is None  # a deleted stack is not "unchanged"
    recreated = _deploy(clients, Assembly.read(tmp_path / "d"))
    assert clients.writes().get("CreateStack") == 1 and recreated.stack_id != created.stack_id
    cfn.delete_stack(StackName=name)
