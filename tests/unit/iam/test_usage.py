"""Per-role usage from a decision log: used, granted but unused, refused, undecided."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_cloud.iam import iam_usage
from local_cloud.iam.usage import EXPAND_LIMIT, expand_action, granted_actions

A = "123456789012"
EXPORT = f"arn:aws:iam::{A}:role/ExportRole"
SHARED = f"arn:aws:iam::{A}:role/SharedRole"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "sagemaker:DescribeModelPackage*", "Resource": "*"},
        {"Effect": "Allow", "Action": "xray:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
    ],
}


def decision(role: str, session: str, action: str, outcome: str = "Allowed", **extra: Any) -> dict[str, Any]:
    return {
        "type": "decision",
        "role": role,
        "session": session,
        "principal": f"arn:aws:sts::{A}:assumed-role/{role.rsplit('/', 1)[-1]}/{session}",
        "action": action,
        "decision": outcome,
        **extra,
    }


def write(path: Path, *records: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"cut": ')  # a torn last line
    return path


def test_used_granted_unused_and_refused_per_function(tmp_path: Path) -> None:
    log = write(
        tmp_path / "decisions.jsonl",
        {"type": "policies", "role": EXPORT, "policies": [{"name": "Inline", "document": POLICY}]},
        decision(EXPORT, "export", "s3:GetObject"),
        decision(EXPORT, "export", "s3:GetObject"),
        decision(EXPORT, "export", "s3:PutObject", "ImplicitlyDenied", refused=True),
        decision(EXPORT, "export", "s3:DeleteObject", "ExplicitlyDenied"),
        {"type": "error", "role": EXPORT, "session": "export", "service": "s3", "operation": "GetObjectAcl"},
        {"type": "trust", "principal": "lambda.amazonaws.com", "resources": [EXPORT]},
    )
    usage = iam_usage(log, {"export": EXPORT})["export"]
    assert usage["used"] == ["s3:GetObject"]
    assert usage["refused"] == ["s3:DeleteObject", "s3:PutObject"]
    assert usage["undecided"] == ["s3:GetObjectAcl"]
    unused = usage["granted_unused"]
    assert "s3:PutObject" in unused  # granted on its resource, refused on another
    assert "s3:GetObject" not in unused
    assert {"sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"} <= set(unused)
    assert "xray:*" in unused  # too broad to list action by action


def test_labels_sharing_a_role_are_told_apart_by_session(tmp_path: Path) -> None:
    log = write(
        tmp_path / "decisions.jsonl",
        decision(SHARED, "configure", "s3:GetObject"),
        decision(SHARED, "promote", "sagemaker:UpdateModelPackage"),
    )
    usage = iam_usage(log, {"configure": SHARED, "promote": SHARED, "StateMachine": "SharedRole"})
    assert usage["configure"]["used"] == ["s3:GetObject"]
    assert usage["promote"]["used"] == ["sagemaker:UpdateModelPackage"]
    assert usage["StateMachine"]["used"] == ["s3:GetObject", "sagemaker:UpdateModelPackage"]  # by role name


def test_a_role_that_made_no_call_reads_its_policies_through_iam(tmp_path: Path) -> None:
    class Iam:
        def get_paginator(self, name: str) -> Any:
            pages = {
                "list_role_policies": [{"PolicyNames": ["Inline"]}],
                "list_attached_role_policies": [{"AttachedPolicies": []}],
            }
            return type("P", (), {"paginate": lambda self, **kw: pages[name]})()

        def get_role_policy(self, **kw: Any) -> dict[str, Any]:
            return {"PolicyDocument": POLICY}

    usage = iam_usage(tmp_path / "missing.jsonl", {"idle": EXPORT}, iam=Iam())["idle"]
    assert usage["used"] == [] and usage["refused"] == []
    assert {"s3:GetObject", "s3:PutObject"} <= set(usage["granted_unused"])


def test_expansion_is_bounded() -> None:
    assert expand_action("s3:GetObject") == ["s3:GetObject"]
    assert "s3:GetObjectVersion" in expand_action("s3:GetObject*")
    assert expand_action("s3:*") == ["s3:*"]  # > EXPAND_LIMIT actions
    assert expand_action("*") == ["*"]
    assert len(expand_action("iot:Describe*")) <= EXPAND_LIMIT or expand_action("iot:Describe*") == [
        "iot:Describe*"
    ]
    assert granted_actions([{"Statement": {"Effect": "Allow", "Action": "lambda:InvokeFunction"}}]) == [
        "lambda:InvokeFunction"
    ]
