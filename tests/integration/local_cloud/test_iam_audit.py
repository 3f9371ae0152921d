"""Audit mode (the default until the flip to enforce): functions still run as their role and
every decision is logged, but nothing is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_cloud import LocalCloud
from local_cloud.iam.enforce import IAM_MODE_ENV
from tests.integration.local_cloud.test_iam_enforce import decisions, make_function, make_role, run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """Its own endpoint in audit mode, whatever the default or the caller's environment says."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(IAM_MODE_ENV, "audit")
        cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("iam-audit")).start()
    try:
        yield cloud
    finally:
        cloud.stop()


def test_audit_logs_what_enforce_would_refuse_and_lets_it_through(local_cloud: LocalCloud) -> None:
    bucket = f"audit-{uuid.uuid4().hex[:8]}"
    local_cloud.client("s3").create_bucket(Bucket=bucket)
    role = make_role(local_cloud)  # no policy at all
    fn = make_function(local_cloud, role)
    out = run(local_cloud, fn, ("s3", "put_object", {"Bucket": bucket, "Key": "k", "Body": "x"}))
    assert out["who"].endswith(f"/{fn}")  # still the function's own role session
    assert "ok" in out["results"][0]
    (record,) = [d for d in decisions(local_cloud) if d.get("session") == fn and d["type"] == "decision"]
    assert (record["mode"], record["action"], record["decision"], record["refused"]) == (
        "audit",
        "s3:PutObject",
        "ImplicitlyDenied",
        False,
    )
    assert "is not authorized to perform: s3:PutObject" in record["message"]


def test_audit_runs_a_function_whose_role_lambda_may_not_assume_with_admin_keys(
    local_cloud: LocalCloud,
) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = make_role(local_cloud, trust=json.dumps(trust))
    fn = make_function(local_cloud, role)
    out = run(local_cloud, fn)
    assert out["who"].endswith(":user/moto")  # moto's answer for the static admin keys
    trust_records = [d for d in decisions(local_cloud) if d["type"] == "trust" and d["resources"] == [role]]
    assert trust_records and trust_records[-1]["decision"] == "ImplicitlyDenied"
    assert trust_records[-1]["refused"] is False
    assert Path(local_cloud.state_dir, "iam", "decisions.jsonl").exists()
