"""Role sessions: the trust check a service makes, minting and refreshing, and who holds a key."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from local_cloud.iam import PolicyKind, parse_policy
from local_cloud.iam.enforce.sessions import REFRESH_MARGIN_S, SESSION_SECONDS, RoleSessions, session_name

A = "123456789012"
ROLE = f"arn:aws:iam::{A}:role/service-role/Checker"
FUNCTION = f"arn:aws:lambda:us-east-1:{A}:function:check"


def trust(service: str, **condition: Any) -> Any:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return parse_policy(
        {"Version": "2012-10-17", "Statement": [statement]}, name="trust", kind=PolicyKind.RESOURCE
    )


class FakeSts:
    """``assume_role`` as the STS API answers it; counts calls."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls: list[dict[str, Any]] = []

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        n = len(self.calls)
        expires = dt.datetime.fromtimestamp(self.clock[0] + kwargs["DurationSeconds"], dt.UTC)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAFAKE{n:04d}",
                "SecretAccessKey": f"secret{n}",
                "SessionToken": f"token{n}",
                "Expiration": expires,
            },
            "AssumedRoleUser": {"Arn": f"arn:aws:sts::{A}:assumed-role/Checker/{kwargs['RoleSessionName']}"},
        }


def sessions(
    policy: Any = None, clock: list[float] | None = None
) -> tuple[RoleSessions, FakeSts, list[float]]:
    now = clock or [1_800_000_000.0]
    sts = FakeSts(now)

    def trust_policy(role_arn: str) -> Any:
        if role_arn != ROLE:
            raise LookupError(role_arn)
        return policy

    return RoleSessions(lambda service: sts, trust_policy, A, clock=lambda: now[0]), sts, now


def test_lambda_may_assume_a_role_that_trusts_it() -> None:
    rs, _, _ = sessions(trust("lambda.amazonaws.com"))
    check = rs.trust(ROLE, "lambda.amazonaws.com", FUNCTION)
    assert check.allowed
    assert check.context == {"aws:SourceAccount": A, "aws:SourceArn": FUNCTION}


def test_trust_for_another_service_or_no_role_is_refused() -> None:
    rs, _, _ = sessions(trust("ec2.amazonaws.com"))
    assert not rs.trust(ROLE, "lambda.amazonaws.com", FUNCTION).allowed
    missing = rs.trust(f"arn:aws:iam::{A}:role/Gone", "lambda.amazonaws.com", FUNCTION)
    assert not missing.allowed and missing.decision is None


def test_trust_conditions_see_the_source_arn_and_account() -> None:
    policy = trust(
        "states.amazonaws.com",
        ArnLike={"aws:SourceArn": f"arn:aws:states:us-east-1:{A}:stateMachine:*"},
        StringEquals={"aws:SourceAccount": A},
    )
    rs, _, _ = sessions(policy)
    machine = f"arn:aws:states:us-east-1:{A}:stateMachine:Pipeline"
    assert rs.trust(ROLE, "states.amazonaws.com", machine).allowed
    assert not rs.trust(ROLE, "states.amazonaws.com", FUNCTION).allowed
    assert not rs.trust(ROLE, "states.amazonaws.com", "").allowed  # no aws:SourceArn: ArnLike is false


def test_sessions_are_cached_then_minted_again_before_expiry() -> None:
    rs, sts, now = sessions(trust("lambda.amazonaws.com"))
    first = rs.credentials(ROLE, "check")
    assert rs.credentials(ROLE, "check") is first
    assert sts.calls == [{"RoleArn": ROLE, "RoleSessionName": "check", "DurationSeconds": SESSION_SECONDS}]
    now[0] += SESSION_SECONDS - REFRESH_MARGIN_S - 1
    assert rs.credentials(ROLE, "check") is first
    now[0] += 2  # now within the margin: a function could outlive the session
    second = rs.credentials(ROLE, "check")
    assert second.access_key_id != first.access_key_id and len(sts.calls) == 2
    assert second.env() == {
        "AWS_ACCESS_KEY_ID": second.access_key_id,
        "AWS_SECRET_ACCESS_KEY": second.secret_access_key,
        "AWS_SESSION_TOKEN": second.session_token,
    }


def test_a_minted_key_resolves_to_its_session_and_role() -> None:
    rs, _, _ = sessions(trust("lambda.amazonaws.com"))
    creds = rs.credentials(ROLE, "check")
    caller = rs.caller(creds.access_key_id)
    assert caller is not None
    assert caller.arn == f"arn:aws:sts::{A}:assumed-role/Checker/check"
    assert caller.role_arn == ROLE  # the path is kept for aws:PrincipalArn
    assert caller.principal_arn == ROLE


@pytest.mark.parametrize("key", ["testing", "ak", "AKIAIOSFODNN7EXAMPLE", "ASIAUNKNOWN0000000"])
def test_keys_that_are_not_sessions_resolve_to_nobody(key: str) -> None:
    rs, _, _ = sessions()
    assert rs.caller(key) is None


def test_a_session_minted_through_the_sts_api_resolves_from_moto() -> None:
    """Somebody (a test, a tool) called sts:AssumeRole through the endpoint: moto keeps it."""
    from moto.sts.models import sts_backends

    role = sts_backends[A]["aws"].assume_role(
        region_name="us-east-1",
        role_session_name="tool",
        role_arn=ROLE,
        policy="",
        duration=900,
        external_id="",
    )
    rs, _, _ = sessions()
    caller = rs.caller(role.access_key_id)
    assert caller is not None
    assert caller.arn == f"arn:aws:sts::{A}:assumed-role/Checker/tool"
    assert caller.role_arn == ROLE


@pytest.mark.parametrize(
    ("name", "expected"),
    [("mlops-edge-check", "mlops-edge-check"), ("a b/c", "a-b-c"), ("x", "x-"), ("n" * 70, "n" * 64)],
)
def test_session_names_are_valid_role_session_names(name: str, expected: str) -> None:
    assert session_name(name) == expected


def test_trust_documents_from_json_text() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    rs, _, _ = sessions(parse_policy(text, name="t", kind=PolicyKind.RESOURCE))
    assert rs.trust(ROLE, "lambda.amazonaws.com").allowed
