"""The console in headless Chromium against a real local environment, as a person uses it.

The tests run in order on one environment (module scope): the first execution, started from the
page, registers and deploys model version 1, which the later tests look at and ask.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import ARTIFACTS, Stage, save_screenshot

PIPELINE_TIMEOUT_MS = 240_000
#: Every state the pipeline visits on its way from a training run to PipelineSucceeded.
HAPPY_PATH = [
    "Configure",
    "ModelGiven?",
    "StartTraining",
    "WaitTraining",
    "DescribeTraining",
    "TrainingDone?",
    "ExportOnnx",
    "QualityGate",
    "RegisterModel",
    "ShouldDeploy?",
    "PublishComponents",
    "ComponentsDeployable?",
    "Deploy",
    "WaitDeployment",
    "CheckDeployment",
    "DeploymentDone?",
    "VerifyStage?",
    "VerifyOnDevice",
    "EvaluateStage",
    "StageDone?",
    "Promote",
    "PipelineSucceeded",
]


def _subscribe(page: Any, topic: str) -> None:
    form = page.get_by_role("form", name="Subscribe to a topic")
    form.get_by_label("Topic").fill(topic)
    form.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#subscriptions")).to_contain_text(topic)


def _wait_status(stage: Stage, arn: str, timeout_s: float = 240) -> dict[str, Any]:
    sfn = stage.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            return desc
        time.sleep(1)
    raise AssertionError(f"{arn} still running after {timeout_s} s")


def test_the_token_is_required_and_the_host_must_be_loopback(stage: Stage) -> None:
    base = stage.console_url.split("/executions")[0]
    try:
        urllib.request.urlopen(f"{base}/api/executions", timeout=5)
        raise AssertionError("answered without a token")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    request = urllib.request.Request(
        stage.page_url("/executions"), headers={"Host": f"example.com:{base.rsplit(':', 1)[1]}"}
    )
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("answered a foreign Host")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403


def test_schema_errors_are_shown_at_their_json_path_and_nothing_starts(stage: Stage, context: Any) -> None:
    page = context.new_page()
    page.goto(stage.page_url("/executions"))
    bad = {**stage.example, "hyperparameters": {"max_depth": -3}, "verification": {"requests": "ten"}}
    page.get_by_label("Input").fill(json.dumps(bad, indent=2))
    page.get_by_role("button", name="Start execution").click()
    problems = page.locator("#input-problems")
    expect(problems).to_contain_text("$.hyperparameters.max_depth")
    expect(problems).to_contain_text("$.verification.requests")
    expect(page.get_by_label("Input")).to_have_attribute("aria-invalid", "true")
    assert "/executions/" not in page.url
    page.get_by_label("Input").fill("{ not json")
    page.get_by_role("button", name="Start execution").click()
    expect(problems).to_contain_text("not JSON")


def test_start_from_the_page_and_watch_the_graph_reach_pipeline_succeeded(stage: Stage, context: Any) -> None:
    mqtt = context.new_page()
    mqtt.goto(stage.page_url("/mqtt"))
    _subscribe(mqtt, "edge/+/inference/result")

    page = context.new_page()
    page.goto(stage.page_url("/executions"))
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Executions")).to_be_visible()
    expect(page.get_by_label("Input")).to_have_value(re.compile(r'"hyperparameters"'))
    page.get_by_role("button", name="Start execution").click()
    page.wait_for_url(re.compile(r"/executions/arn:aws:states:"))
    graph = page.locator("#graph")
    expect(graph.locator('[data-state="Configure"]')).to_have_class(re.compile(r"status-(running|succeeded)"))
    expect(graph.locator('[data-state="PipelineSucceeded"]')).to_have_class(
        re.compile("status-succeeded"), timeout=PIPELINE_TIMEOUT_MS
    )
    expect(page.locator("#execution-status")).to_contain_text("SUCCEEDED")
    for state in HAPPY_PATH:
        expect(graph.locator(f'[data-state="{state}"]')).to_have_class(re.compile("status-succeeded"))
    assert graph.locator(".node.status-failed, .node.status-running").count() == 0
    assert graph.locator('[data-state="PipelineFailed"].status-none').count() == 1

    # the Rollout panel: an input without `rollout` is the single fleet stage, as the run recorded it
    arn = page.url.split("/executions/", 1)[1].split("?")[0]
    output = json.loads(stage.client("stepfunctions").describe_execution(executionArn=arn)["output"])
    (recorded,) = output["rollout"]["stages"]
    fleet = page.locator('#rollout tbody tr[data-stage="fleet"]')
    expect(fleet).to_have_attribute("data-status", "SUCCEEDED")
    expect(fleet.locator(".stage-status .key-succeeded")).to_have_text("SUCCEEDED")
    cells = fleet.locator("td")
    expect(cells.nth(0)).to_have_text(recorded["thing_group"])
    expect(cells.nth(2)).to_have_text("1")  # targeted: the one device
    expect(cells.nth(5)).to_have_text("1")  # verified
    expect(page.locator("#rollout tbody tr")).to_have_count(1)

    graph.locator('[data-state="ExportOnnx"]').click()
    detail = page.locator("#state-detail")
    expect(detail.get_by_role("heading", name="ExportOnnx")).to_be_visible()
    expect(page.locator("#state-input")).to_contain_text('"training"')
    expect(page.locator("#state-output")).to_contain_text('"onnx_uri"')
    expect(page.locator("#history tbody tr").first).to_contain_text("ExecutionSucceeded")
    page.set_viewport_size({"width": 1600, "height": 1240})
    page.get_by_role("button", name="Fit").click()
    save_screenshot(page, "console-execution.png", down_to=".execution-view")

    # the MQTT page, subscribed before the execution started, saw the verification's answers
    answers = mqtt.locator("#messages li.verification")
    expect(answers.first).to_be_visible()
    expect(answers.first).to_contain_text(re.compile(r"verification verify-"))
    expect(answers.first).to_contain_text('"predictions"')
    assert answers.count() >= 10  # the example input's verification.requests


def test_publish_a_request_from_the_page_and_see_the_answer(stage: Stage, context: Any) -> None:
    page = context.new_page()
    page.goto(stage.page_url("/mqtt"))
    thing = stage.things[0]
    _subscribe(page, "edge/+/inference/result")
    _subscribe(page, f"edge/{thing}/inference/request")
    form = page.get_by_role("form", name="Publish a message")
    form.get_by_label("Topic").fill(f"edge/{thing}/inference/request")
    form.get_by_label("Payload").fill(json.dumps({"id": "console-test-1", "rows": [stage.row]}))
    form.get_by_role("button", name="Publish").click()
    answer = page.locator('#messages li[data-topic$="/inference/result"][data-request-id="console-test-1"]')
    expect(answer).to_contain_text('"predictions"')
    expect(answer).to_contain_text('"ok": true')
    expect(page.locator('#messages li[data-topic$="/inference/request"]')).to_have_count(1)
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.get_by_role("button", name="Resume").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert {line["topic"] for line in lines} == {
        f"edge/{thing}/inference/request",
        f"edge/{thing}/inference/result",
    }
    save_screenshot(page, "console-mqtt.png")
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#messages li")).to_have_count(0)


def test_the_devices_page_shows_the_device_and_its_model_version(stage: Stage, context: Any) -> None:
    page = context.new_page()
    page.goto(stage.page_url("/devices"))
    row = page.locator(f'#devices tr[data-thing="{stage.things[0]}"]')
    expect(row).to_contain_text("HEALTHY")
    expect(row.locator(".model-version")).to_have_text("1.0.1")
    expect(row).to_contain_text("SUCCEEDED")
    # the device's telemetry (every 10 s with the example input), live on the page
    expect(row.locator("td.telemetry")).not_to_have_text("none yet", timeout=30_000)
    assert int(row.locator("td.requests").inner_text()) >= 10  # the verification's requests at least
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "devices-page.png"))  # for a person to look at
    page.get_by_label("Filter").fill("no-such-device")
    expect(page.locator("#devices tbody tr")).to_have_count(0)


def test_approving_a_registered_model_starts_the_deploy_only_execution(stage: Stage, context: Any) -> None:
    held = stage.start({**stage.example, "auto_approve": False}, "console-test-awaiting-approval")
    assert _wait_status(stage, held)["status"] == "SUCCEEDED"  # stopped at AwaitingApproval
    before = {
        e["executionArn"]
        for e in stage.client("stepfunctions").list_executions(stateMachineArn=stage.state_machine_arn)[
            "executions"
        ]
    }

    page = context.new_page()
    page.goto(stage.page_url("/models"))
    row = page.get_by_role("row", name="version 2")
    expect(row).to_contain_text("PendingManualApproval")
    expect(page.get_by_role("row", name="version 1")).to_contain_text(stage.things[0])
    row.get_by_role("button", name="Approve").click()
    expect(page.locator("#models-status")).to_contain_text("Version 2 approved")
    expect(row).to_contain_text("Approved")
    page.screenshot(path=str(ARTIFACTS / "models-page.png"))

    page.goto(stage.page_url("/executions"))
    started = None
    deadline = time.monotonic() + 30
    while started is None and time.monotonic() < deadline:
        now = stage.client("stepfunctions").list_executions(stateMachineArn=stage.state_machine_arn)[
            "executions"
        ]
        fresh = [e for e in now if e["executionArn"] not in before]
        started = fresh[0] if fresh else None
        time.sleep(0.5)
    assert started is not None, "the approval rule started no execution"
    document = json.loads(
        stage.client("stepfunctions").describe_execution(executionArn=started["executionArn"])["input"]
    )
    assert document["model_package_arn"].endswith("/2")
    expect(page.locator(f'#executions tr[data-name="{started["name"]}"]')).to_be_visible(timeout=10_000)
    page.locator(f'#executions tr[data-name="{started["name"]}"] a').click()
    graph = page.locator("#graph")
    expect(graph.locator('[data-state="PipelineSucceeded"]')).to_have_class(
        re.compile("status-succeeded"), timeout=PIPELINE_TIMEOUT_MS
    )
    assert graph.locator('[data-state="StartTraining"].status-none').count() == 1  # deploy-only


def test_a_failed_execution_shows_its_failing_state_in_red_and_the_cause(stage: Stage, context: Any) -> None:
    arn = stage.start({"hyperparameters": {"max_depth": -3}}, "console-test-bad-input")
    assert _wait_status(stage, arn)["status"] == "FAILED"
    page = context.new_page()
    page.goto(stage.page_url(f"/executions/{arn}"))
    graph = page.locator("#graph")
    expect(graph.locator('[data-state="Configure"]')).to_have_class(re.compile("status-failed"))
    expect(graph.locator('[data-state="PipelineFailed"]')).to_have_class(re.compile("status-failed"))
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("in Configure")
    expect(banner).to_contain_text("max_depth")
    graph.locator('[data-state="Configure"]').click()
    expect(page.locator("#state-cause")).to_contain_text("max_depth")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["events"][-1]["type"] == "ExecutionFailed"


def test_the_monitoring_page_charts_each_feature_and_marks_the_drifting_one(
    stage: Stage, context: Any
) -> None:
    """A report the monitoring function's core writes into the local cloud's S3 (windows counted by
    WindowCounter: a calm device, and one whose bmi is shifted by 2 std), drawn by the page."""
    from tests.fixtures import monitoring_report as mr

    outputs = stage.client("cloudformation").describe_stacks()["Stacks"]
    bucket = next(
        o["OutputValue"]
        for s in outputs
        for o in s.get("Outputs", [])
        if o["OutputKey"] == "ArtifactBucketName"
    )
    base = mr.diabetes_baseline(stage.state_dir / "monitoring")
    calm, drifting = stage.things[0], "mlops-edge-drifting"
    docs = mr.windows(base, calm, 2, seed=1) + mr.windows(base, drifting, 2, seed=2, shift={"bmi": 2.0})
    mr.produce(stage.client("s3"), stage.client("events"), bucket, base, docs)
    # the command's real path: its own process, the bucket from the deployed stack's output
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_edge.main",
            "monitor",
            "--model-version",
            mr.MODEL_VERSION,
            "--output",
            "json",
        ],
        env={**os.environ, **stage.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = {s["scope"]: s for s in json.loads(done.stdout)["scopes"]}
    assert shown[f"devices/{drifting}"]["violations"][0]["feature_name"] == "bmi"
    assert shown[f"devices/{calm}"]["violations"] == []

    page = context.new_page()
    page.goto(stage.page_url("/monitoring") + f"&model_version={mr.MODEL_VERSION}")
    expect(page.locator("#monitoring-meta")).to_contain_text(f"model {mr.MODEL_VERSION}")
    charts = page.locator("#feature-charts figure")
    expect(charts).to_have_count(len(base.features))
    bmi = page.locator('figure[data-feature="bmi"]')
    expect(bmi).to_have_class(re.compile("violated"))  # the fleet: half its rows shifted
    assert bmi.locator("svg.histogram rect").count() == 2 * len(
        base.statistics["features"][2]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    )
    page.get_by_label("Device", exact=True).select_option(f"devices/{drifting}")
    expect(page.locator("#charts-title")).to_contain_text(drifting)
    expect(page.locator("figure.violated")).to_have_count(1)
    expect(bmi).to_contain_text("✖ drift")
    expect(bmi.locator(".distance")).to_contain_text("> threshold 0.100")
    expect(page.locator(f'#monitoring-scopes tr[data-scope="devices/{drifting}"]')).to_contain_text(
        "bmi drift"
    )
    assert "scope=devices" in page.url  # the selection is in the address, so it can be shared
    save_screenshot(page, "console-monitoring.png")
    page.get_by_label("Device", exact=True).select_option(f"devices/{calm}")
    expect(page.locator("figure.violated")).to_have_count(0)
    expect(page.locator('figure[data-feature="age"]')).to_contain_text("✔ ok")
