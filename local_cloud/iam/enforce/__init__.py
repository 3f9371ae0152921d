"""The dispatcher's side of IAM: who calls, what the call is, which policies apply, the verdict.

Unlike the evaluator around it (``local_cloud.iam``, a pure library), this package talks to the
running endpoint: it reads policies through the IAM and S3 APIs, mints role sessions through
STS, routes and parses requests with moto's botocore-driven router, and writes the decision log.

- ``calls``: SigV4 credential scope → access key and signing name; request → ``ApiCall``;
- ``store``: a role's inline + managed policies and trust policy, bucket policies, cached until
  an IAM/S3-policy/CloudFormation write;
- ``sessions``: trust checks and temporary credentials per role; access key → caller;
- ``log``: the JSON Lines decision log;
- ``modes``: ``MLOPS_EDGE_IAM`` (``Mode``, ``mode_from_env``);
- ``role_credentials``: trust checks and credentials for Lambda functions and the state machine;
- ``deciding``: the check itself (policies, provider facts, what cannot be decided);
- ``answering``: decision log records, refusals and server errors;
- ``authorizer``: ``Authorizer.check`` (the dispatcher's call), assembled from the four above.
"""

from local_cloud.iam.enforce.authorizer import Authorizer
from local_cloud.iam.enforce.calls import ApiCall, Credential, UnparsableRequest, credential_of, identify
from local_cloud.iam.enforce.deciding import FactSource
from local_cloud.iam.enforce.log import DecisionLog
from local_cloud.iam.enforce.modes import DEFAULT_MODE, IAM_MODE_ENV, LOG_NAME, Mode, mode_from_env
from local_cloud.iam.enforce.sessions import RoleNotAssumable, RoleSessions, SessionCredentials
from local_cloud.iam.enforce.store import PolicyStore, RolePolicies

__all__ = [
    "DEFAULT_MODE",
    "IAM_MODE_ENV",
    "LOG_NAME",
    "ApiCall",
    "Authorizer",
    "Credential",
    "DecisionLog",
    "FactSource",
    "Mode",
    "PolicyStore",
    "RoleNotAssumable",
    "RolePolicies",
    "RoleSessions",
    "SessionCredentials",
    "UnparsableRequest",
    "credential_of",
    "identify",
    "mode_from_env",
]
