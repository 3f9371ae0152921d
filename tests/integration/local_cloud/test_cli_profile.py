"""`--profile` reaches the local cloud through a named profile alone, and JSON matches the table.

The shell has no AWS variables at all (no endpoint, no keys): only a profile in a private
``AWS_CONFIG_FILE`` with ``endpoint_url``, as a user would write one for the local cloud.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mlops_edge.main import main
from pipeline import aws as pipeline_aws
from tests.integration.local_cloud.conftest import wait_until

pytestmark = pytest.mark.integration

AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION")


@pytest.fixture
def profile_only(local_cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    env = local_cloud.env()
    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile localdev]\nregion = {env['AWS_REGION']}\nendpoint_url = {env['AWS_ENDPOINT_URL']}\n"
        f"aws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\naws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    for key in (*AWS_VARS, "AWS_DEFAULT_REGION", "MLOPS_EDGE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    yield "localdev"
    for key in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):  # what the CLI exported
        os.environ.pop(key, None)
    pipeline_aws.use_profile()


def test_profile_reaches_the_local_cloud_and_json_matches_the_table(
    local_cloud: Any, states_role_arn: str, profile_only: str
) -> None:
    sfn = local_cloud.client("stepfunctions")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(
        name=f"cli-profile-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=states_role_arn
    )["stateMachineArn"]
    for name in ("first", "second"):
        arn = sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
        wait_until(lambda a=arn: sfn.describe_execution(executionArn=a)["status"] != "RUNNING", timeout=30)

    runner = CliRunner()
    args = ["--profile", profile_only, "executions", "list", "--state-machine", machine]
    as_json = runner.invoke(main, [*args, "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    table = runner.invoke(main, args)
    assert table.exit_code == 0, table.output
    records = json.loads(as_json.output)["executions"]
    assert sorted(r["name"] for r in records) == ["first", "second"]
    for r in records:
        (row,) = [line for line in table.output.splitlines() if f" {r['name']} " in line]
        started = datetime.fromisoformat(r["started"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        assert r["status"] == "SUCCEEDED" and "SUCCEEDED" in row and started in row

    history = runner.invoke(
        main,
        [
            "--profile",
            profile_only,
            "executions",
            "history",
            "first",
            "--state-machine",
            machine,
            "--output",
            "json",
        ],
    )
    assert history.exit_code == 0, history.output
    document = json.loads(history.output)
    assert document["status"] == "SUCCEEDED" and [s["state"] for s in document["states"]] == ["P"]

    missing = runner.invoke(main, ["--profile", "nope", "executions", "list", "--state-machine", machine])
    assert missing.exit_code == 1 and "The config profile (nope) could not be found" in missing.output
    assert "localdev" in missing.output
