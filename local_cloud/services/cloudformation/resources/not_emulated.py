"""Resource types the local cloud accepts in a template but does not emulate (documented in
docs/deploy-aws.md): a record with a physical id, so ``Ref`` resolves, and nothing else."""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel

from local_cloud.services.cloudformation.resources.base import (
    Deployed,
    Handler,
    ResourceRequest,
    generated_name,
)


class CdkMetadata(Handler, CloudFormationModel):
    """``AWS::CDK::Metadata``: CDK's usage report (analytics), nothing a stack's code uses."""

    TYPE = "AWS::CDK::Metadata"
    PROPERTIES = frozenset({"Analytics"})

    @classmethod
    def create(cls, request: ResourceRequest) -> Deployed:
        return Deployed(generated_name(request.stack_name, request.logical_id, limit=128))

    @classmethod
    def update(cls, request: ResourceRequest, previous: Any) -> Deployed:
        return Deployed(previous.physical_id)

    @classmethod
    def remove(cls, previous: Any) -> None:
        return None


#: The allow-list: accepted, not emulated.
NOT_EMULATED = frozenset({CdkMetadata.TYPE})
