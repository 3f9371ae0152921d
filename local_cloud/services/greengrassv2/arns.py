"""ARNs of the greengrassv2 API: parsing what callers pass in, building what we hand out.

Parsing raises the API's ``ValidationException`` so a malformed ARN is refused before any state
is looked at, the way the service answers a value that fails the model's pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from local_cloud.services.greengrassv2.exceptions import ValidationException

COMPONENT_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):greengrass:(?P<region>[^:]*):(?P<account>aws|[0-9]+):components:(?P<name>[^:]+)(?::versions:(?P<version>[^:]+))?$"
)
TARGET_ARN = re.compile(r"^arn:[^:]*:iot:[^:]*:[0-9]+:(?P<kind>thing|thinggroup)/(?P<name>.+)$")


class TargetKind(StrEnum):
    """What a deployment targets: one core device, or every member of a thing group (continuous)."""

    THING = "thing"
    THING_GROUP = "thinggroup"


@dataclass(frozen=True)
class Target:
    """A deployment target, parsed once so the rules never re-split an ARN."""

    kind: TargetKind
    name: str
    arn: str

    @classmethod
    def parse(cls, arn: str) -> Target:
        found = TARGET_ARN.match(arn or "")
        if not found:
            raise ValidationException(
                f"{arn!r} is not a valid target ARN (an IoT thing or thing group ARN)",
                fields=[{"name": "targetArn", "message": "Value does not match the ARN pattern"}],
            )
        return cls(TargetKind(found["kind"]), found["name"], arn)

    @property
    def noun(self) -> str:
        return "Thing group" if self.kind is TargetKind.THING_GROUP else "Thing"

    @property
    def resource_type(self) -> str:
        """The ``resourceType`` of a ResourceNotFoundException about this target."""
        return "THING_GROUP" if self.kind is TargetKind.THING_GROUP else "THING"

    @property
    def group_name(self) -> str:
        """``thinggroup/<name>`` or ``thing/<name>``: the nucleus's name for a deployment's group."""
        return f"{self.kind}/{self.name}"


def parse_component_arn(arn: str, *, need_version: bool) -> tuple[str, str | None]:
    """(name, version) of a component ARN; ValidationException when it is not one."""
    found = COMPONENT_ARN.match(arn or "")
    if not found or (need_version and not found["version"]):
        expected = "component version ARN" if need_version else "component ARN"
        raise ValidationException(
            f"{arn!r} is not a valid {expected}",
            fields=[{"name": "arn", "message": "Value does not match the ARN pattern"}],
        )
    return found["name"], found["version"]


@dataclass(frozen=True)
class Arns:
    """Builds the ARNs of one account and region, so records never format them by hand."""

    region: str
    account: str

    def component(self, name: str, version: str | None = None) -> str:
        base = f"arn:aws:greengrass:{self.region}:{self.account}:components:{name}"
        return f"{base}:versions:{version}" if version else base

    def deployment(self, deployment_id: str) -> str:
        return f"arn:aws:greengrass:{self.region}:{self.account}:deployments:{deployment_id}"

    def configuration(self, target: Target, revision: int) -> str:
        return f"arn:aws:greengrass:{self.region}:{self.account}:configuration:{target.group_name}:{revision}"

    def iot_job(self, job_id: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:job/{job_id}"

    def thing(self, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:thing/{name}"
