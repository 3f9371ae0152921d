"""Small pieces the stacks and their grant tables share: log retention, and the :class:`Scope`
grants are made on.

Why ``Scope`` lives here and not beside the grant table (``permissions.py``): the grant table lists
grants that other modules define (``monitoring.py``'s), and those need the type too; kept below
both, the type leaves no import circle between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.storage import ArtifactStore

_RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def retention(days: int) -> logs.RetentionDays:
    """The CloudWatch Logs retention for a number of days (only some values exist)."""
    try:
        return _RETENTION_DAYS[days]
    except KeyError:
        raise ValueError(f"log_retention_days must be one of {sorted(_RETENTION_DAYS)}, not {days}") from None


@dataclass(frozen=True, kw_only=True)
class Scope:
    """The resources grants are scoped to (``permissions.py``'s table and the grants it lists)."""

    store: ArtifactStore
    component_prefix: str
    thing_group_name: str
    model_package_group_name: str
    #: The canary thing group a share-of-fleet rollout stage moves devices into ("" = none).
    canary_thing_group_name: str = ""
    verifier_secret_arn: str = ""
    #: The EventBridge rule that starts a retraining on drift (infra/monitoring.py; "" = none).
    retraining_rule_name: str = ""

    def arn(self, scope: Construct, service: str, resource: str, name: str, sep: str = "/") -> str:
        """An ARN in this stack's account and region."""
        fmt = ArnFormat.SLASH_RESOURCE_NAME if sep == "/" else ArnFormat.COLON_RESOURCE_NAME
        return Stack.of(scope).format_arn(
            service=service, resource=resource, resource_name=name, arn_format=fmt
        )
