"""Issue 13 item 7: the README's `mlops-edge execute --input pipeline/config/example-input.json`
works in an environment `mlops-edge run` prepared, as printed.

The example names no dataset, so the pipeline trains on the stack's default dataset
(``MLOPS_EDGE_DATASET_URI``, the ``DatasetUri`` output: ``s3://<bucket>/datasets/train/``), where
docs/deploy-aws.md tells an AWS user to upload a CSV. `mlops-edge run` puts its training CSV there
(:func:`put_default_dataset`); the command is then run exactly as the README prints it, from the
repository root, with the environment `mlops-edge local exec` gives.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mlops_edge.environment.runner import DATASET_OUTPUT, put_default_dataset

from .conftest import Stage

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: States after training: reaching one means the example trained on the default dataset.
AFTER_TRAINING = ("ExportOnnx", "RegisterModel")


def test_the_readme_example_input_trains_on_what_the_run_uploaded(stage: Stage) -> None:
    s3 = stage.client("s3")
    default = put_default_dataset(s3, stage.pipeline.stack.outputs, stage.data)
    assert default == stage.pipeline.stack.outputs[DATASET_OUTPUT] + "train.csv"
    bucket, _, key = default[5:].partition("/")
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == stage.data.train_csv.stat().st_size

    name = f"example-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **stage.cloud.env()}
    command = [sys.executable, "-m", "mlops_edge.main", "execute"]
    command += ["--input", "pipeline/config/example-input.json", "--name", name, "--no-wait"]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    sfn = stage.client("stepfunctions")
    arn = stage.pipeline.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    deadline = time.monotonic() + 300
    entered: set[str] = set()
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=arn)["status"]
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        entered |= {e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e}
        if status != "RUNNING" or entered & set(AFTER_TRAINING):
            break
        time.sleep(2)
    if status == "RUNNING":
        sfn.stop_execution(executionArn=arn, error="TestDone", cause="training passed")
    assert entered & set(AFTER_TRAINING), (status, sorted(entered), events[-1])
