"""The dispatcher's authorizer over stubbed policies: modes, refusals as AWS sends them, what is
not evaluated, what cannot be decided, the decision log, cache invalidation on writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from werkzeug.wrappers import Request

from local_cloud.iam import Caller, parse_policy
from local_cloud.iam.enforce import DEFAULT_MODE, Authorizer, Mode, mode_from_env
from local_cloud.iam.enforce.store import RolePolicies
from tests.unit.iam.wire import signed

A = "123456789012"
ROLE = f"arn:aws:iam::{A}:role/Fn"
SESSION = f"arn:aws:sts::{A}:assumed-role/Fn/fn"
KEY = "ASIASESSIONKEY"


def allow(*actions: str, resource: str = "*") -> Any:
    return parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "Grant", "Effect": "Allow", "Action": list(actions), "Resource": resource}],
        },
        name="Inline",
    )


def authorizer(tmp_path: Path, mode: Mode, *policies: Any, unresolved: tuple[str, ...] = ()) -> Authorizer:
    auth = Authorizer(
        mode,
        client=lambda service: pytest.fail(f"no {service} client in unit tests"),
        account=A,
        region="us-east-1",
        log_path=tmp_path / "iam" / "decisions.jsonl",
        admin_keys=frozenset({"testing"}),
    )
    role = RolePolicies(ROLE, exists=True, policies=tuple(policies), unresolved=unresolved)
    auth.store.role = lambda arn: role  # type: ignore[method-assign]
    auth.store.bucket_policy = lambda bucket: None  # type: ignore[method-assign]
    auth.sessions.caller = lambda key: Caller(SESSION, role_arn=ROLE) if key == KEY else None  # type: ignore[method-assign]
    return auth


def request(service: str, operation: str, params: dict[str, Any], key: str = KEY) -> Request:
    environ, _ = signed(service, operation, params, access_key=key)
    return Request(environ)


def log(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "iam" / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def parsed_error(service: str, operation: str, response: Any) -> dict[str, Any]:
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    parser = create_parser(model.metadata["protocol"])
    return parser.parse(
        {
            "status_code": response.status_code,
            "headers": HeadersDict(response.headers),
            "body": response.get_data(),
        },
        model.operation_model(operation).output_shape,
    )["Error"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DEFAULT_MODE),
        ({"MLOPS_EDGE_IAM": ""}, DEFAULT_MODE),
        ({"MLOPS_EDGE_IAM": "enforce"}, Mode.ENFORCE),
        ({"MLOPS_EDGE_IAM": "audit"}, Mode.AUDIT),
        ({"MLOPS_EDGE_IAM": " OFF "}, Mode.OFF),
    ],
)
def test_mode_from_the_environment(environ: dict[str, str], expected: Mode) -> None:
    assert mode_from_env(environ) is expected


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="MLOPS_EDGE_IAM='strict': expected one of off, audit, enforce"):
        mode_from_env({"MLOPS_EDGE_IAM": "strict"})


def test_enforce_refuses_as_aws_does_and_logs(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE, allow("lambda:GetFunction"))
    refusal = auth.check(request("lambda", "invoke", {"FunctionName": "target"}))
    assert refusal is not None and refusal.status_code == 403
    error = parsed_error("lambda", "Invoke", refusal)
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: {SESSION} is not authorized to perform: lambda:InvokeFunction on resource: "
        f"arn:aws:lambda:us-east-1:{A}:function:target because no identity-based policy allows the "
        "lambda:InvokeFunction action"
    )
    (record,) = log(tmp_path)
    assert record["type"] == "decision" and record["refused"] is True
    assert (record["principal"], record["role"], record["session"]) == (SESSION, ROLE, "fn")
    assert (record["service"], record["operation"], record["action"]) == (
        "lambda",
        "Invoke",
        "lambda:InvokeFunction",
    )
    assert record["decision"] == "ImplicitlyDenied" and record["message"] == error["Message"]


def test_allowed_passes_and_logs_the_deciding_statement(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE, allow("lambda:InvokeFunction"))
    assert auth.check(request("lambda", "invoke", {"FunctionName": "target"})) is None
    (record,) = log(tmp_path)
    assert (record["decision"], record["statements"], record["refused"]) == (
        "Allowed",
        ["Inline#Grant"],
        False,
    )
    assert record["elapsed_ms"] >= 0


def test_audit_decides_and_logs_but_never_refuses(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.AUDIT)
    assert auth.check(request("s3", "list_objects_v2", {"Bucket": "b"})) is None
    (record,) = log(tmp_path)
    assert (record["action"], record["decision"], record["refused"], record["mode"]) == (
        "s3:ListBucket",
        "ImplicitlyDenied",
        False,
        "audit",
    )


def test_off_evaluates_nothing(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.OFF)
    assert auth.check(request("s3", "list_objects_v2", {"Bucket": "b"})) is None
    assert not (tmp_path / "iam").exists()


@pytest.mark.parametrize("key", ["testing", "ak", "AKIAUSERKEY"])
def test_keys_that_are_not_role_sessions_act_as_admin(tmp_path: Path, key: str) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE)
    assert auth.check(request("s3", "list_objects_v2", {"Bucket": "b"}, key=key)) is None
    assert log(tmp_path) == []


def test_a_refused_dependent_action_is_named_and_checking_stops_there(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE, allow("s3:PutObject"))
    refusal = auth.check(
        request("s3", "put_object", {"Bucket": "b", "Key": "k", "Body": b"x", "Tagging": "a=b"})
    )
    assert refusal is not None and refusal.status_code == 403
    assert parsed_error("s3", "PutObject", refusal)["Code"] == "AccessDenied"
    records = log(tmp_path)
    assert [(r["action"], r["decision"]) for r in records] == [
        ("s3:PutObject", "Allowed"),
        ("s3:PutObjectTagging", "ImplicitlyDenied"),
    ]
    assert records[1]["reason"].startswith("s3:PutObjectTagging for s3:PutObject")


def test_what_cannot_be_decided_is_a_server_error_in_enforce_and_logged_in_audit(tmp_path: Path) -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"s3:ExistingObjectTag/team": "ml"}},
                }
            ],
        },
        name="Odd",
    )
    enforce = authorizer(tmp_path / "e", Mode.ENFORCE, policy)
    answer = enforce.check(request("s3", "list_objects_v2", {"Bucket": "b"}))
    assert answer is not None and answer.status_code == 500
    assert b"UnsupportedConditionKey" in answer.get_data()
    (record,) = log(tmp_path / "e")
    assert record["type"] == "error" and "s3:existingobjecttag/team" in record["error"]
    audit = authorizer(tmp_path / "a", Mode.AUDIT, policy)
    assert audit.check(request("s3", "list_objects_v2", {"Bucket": "b"})) is None
    assert log(tmp_path / "a")[0]["type"] == "error"


@pytest.mark.parametrize(
    ("key", "action"),
    [("aws:ResourceTag/team", "lambda:InvokeFunction"), ("iam:AssociatedResourceArn", "lambda:Invoke*")],
)
def test_a_condition_on_a_key_the_dispatcher_does_not_fill_is_not_decided(
    tmp_path: Path, key: str, action: str
) -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"},
                {
                    "Effect": "Deny",
                    "Action": action,
                    "Resource": "*",
                    "Condition": {"StringEquals": {key: "x"}},
                },
            ],
        },
        name="Tagged",
    )
    auth = authorizer(tmp_path, Mode.ENFORCE, policy)
    answer = auth.check(request("lambda", "invoke", {"FunctionName": "target"}))
    assert answer is not None and answer.status_code == 500
    assert key.lower().encode() in answer.get_data()
    # a statement about other actions does not stand in the way
    other = authorizer(tmp_path / "other", Mode.ENFORCE, policy)
    assert other.check(request("s3", "list_objects_v2", {"Bucket": "b"})) is not None  # plain refusal
    assert log(tmp_path / "other")[0]["type"] == "decision"


def test_a_refusal_with_unreadable_managed_policies_is_not_decided(tmp_path: Path) -> None:
    managed = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    auth = authorizer(tmp_path, Mode.ENFORCE, unresolved=(managed,))
    answer = auth.check(request("s3", "list_objects_v2", {"Bucket": "b"}))
    assert answer is not None and answer.status_code == 500
    assert managed.encode() in answer.get_data()


def test_facts_come_from_the_service_provider(tmp_path: Path) -> None:
    policy = allow("greengrass:GetDeployment", "iot:DescribeThingGroup")
    auth = authorizer(tmp_path, Mode.ENFORCE, policy)
    seen: list[tuple[str, dict[str, Any]]] = []

    def facts(operation: str, params: Any) -> dict[str, Any]:
        seen.append((operation, dict(params)))
        return {"jobId": "job-1", "targetArn": f"arn:aws:iot:us-east-1:{A}:thinggroup/fleet"}

    auth.facts["greengrassv2"] = facts
    refusal = auth.check(request("greengrassv2", "get_deployment", {"deploymentId": "d-1"}))
    assert seen == [("GetDeployment", {"deploymentId": "d-1"})]
    assert refusal is not None
    assert (
        "iot:DescribeJob on resource: arn:aws:iot:us-east-1:123456789012:job/job-1"
        in parsed_error("greengrassv2", "GetDeployment", refusal)["Message"]
    )


def test_a_target_that_does_not_exist_is_decided_on_its_own_action(tmp_path: Path) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE, allow("greengrass:GetDeployment"))
    auth.facts["greengrassv2"] = lambda operation, params: None
    assert auth.check(request("greengrassv2", "get_deployment", {"deploymentId": "gone"})) is None
    (record,) = log(tmp_path)
    assert record["action"] == "greengrass:GetDeployment" and "iot:DescribeJob" in record["not_enforced"]


class Recording:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.mark.parametrize(
    ("service", "operation", "params", "invalidates"),
    [
        ("iam", "put_role_policy", {"RoleName": "r", "PolicyName": "p", "PolicyDocument": "{}"}, True),
        ("iam", "get_role", {"RoleName": "r"}, False),
        ("s3", "put_bucket_policy", {"Bucket": "b", "Policy": "{}"}, True),
        ("s3", "put_object", {"Bucket": "b", "Key": "k", "Body": b"x"}, False),
        ("cloudformation", "update_stack", {"StackName": "s"}, True),
        ("lambda", "invoke", {"FunctionName": "f"}, False),
    ],
)
def test_writes_that_may_change_policies_empty_the_caches(
    tmp_path: Path, service: str, operation: str, params: dict[str, Any], invalidates: bool
) -> None:
    auth = authorizer(tmp_path, Mode.ENFORCE)
    recorded = Recording()
    auth.store.invalidate = recorded  # type: ignore[method-assign]
    auth.observe(request(service, operation, params, key="testing"), 200)
    assert recorded.count == (1 if invalidates else 0)
    auth.observe(request(service, operation, params, key="testing"), 400)  # a failed write changes nothing
    assert recorded.count == (1 if invalidates else 0)
