"""Where per-device detail lives: S3 objects under the execution's state prefix, not the document.

Step Functions holds at most 256 KiB per state input and output (``States.DataLimitExceeded``,
which no Catch handles), and every state's output is kept in the execution history. So the state
document carries only bounded summaries of the fleet (counts, the S3 URI of the detail and at most
:data:`MAX_NAMED` devices with their reasons, enough for a Fail cause a person can act on), and
each device's own record is written by the handler that made it, at a key fixed by the execution:

``s3://<bucket>/<state prefix>executions/<execution>/<name>``

The handlers write these objects and return their URIs; the run report reads them, and finds them
from ``config`` alone when a failing state returned no URI. No CDK import here: the Lambda cores
and the tools use this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How many devices a summary or an error message names; the rest are counted and left to S3.
MAX_NAMED = 10

#: Deploy: the thing group's members the deployment targeted.
DEPLOYMENT_TARGETS = "deployment-targets.json"
#: CheckDeployment: every device's status for the deployment, as of the latest check.
DEPLOYMENT_STATUS = "deployment-status.json"
#: VerifyOnDevice: every device's verification result.
VERIFICATION = "verification.json"
#: EvaluateStage / Rollback: each stage's row with its devices (stage, status, reason, verified).
ROLLOUT = "rollout.json"


def execution_prefix(config: Mapping[str, Any]) -> str:
    """The key prefix of one execution's detail objects (``config`` as Configure returns it)."""
    return f"{config['state_prefix']}executions/{config['execution']}/"


def detail_uri(config: Mapping[str, Any], name: str) -> str:
    """``s3://`` URI of the detail object ``name`` of this execution."""
    return f"s3://{config['bucket']}/{execution_prefix(config)}{name}"
