"""Browser tests of `mlops-edge console` against a real local environment.

Module scope: the local cloud with the pipeline stack deployed (as `mlops-edge run` deploys it),
one simulated device, the diabetes dataset uploaded, and the real CLI (`mlops-edge console`) on a
free port, stopped by PID. The pipeline stack carries its own approval rule (infra/approval.py), so
Approve starts the deploy-only path exactly as under `mlops-edge run --keep`. The browser is
Debian's Chromium driven by Playwright; without one every test here skips with the reason (and the
session's summary says so). Each test saves a screenshot of its pages on failure, under
``$MLOPS_EDGE_TEST_ARTIFACTS`` (default ``.local/test-artifacts/console``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import LAUNCH_ARGS, find_chromium
from tests.fixtures.paths import REPO_ROOT

ARTIFACTS = Path(
    os.environ.get("MLOPS_EDGE_TEST_ARTIFACTS", REPO_ROOT / ".local" / "test-artifacts" / "console")
)
#: Where README screenshots go when asked for (``MLOPS_EDGE_SCREENSHOTS=docs/images``).
SCREENSHOTS = os.environ.get("MLOPS_EDGE_SCREENSHOTS")
_SKIPPED: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SKIPPED:
        terminalreporter.write_line(f"console browser tests skipped: {_SKIPPED[0]}", yellow=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    found = find_chromium()
    if found.path is None:
        if not _SKIPPED:
            _SKIPPED.append(found.reason)
        pytest.skip(found.reason)
    return found.path


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    manager = sync_playwright()
    playwright = manager.__enter__()
    try:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()
    finally:
        with _driver_watchdog():
            manager.__exit__(None, None, None)


@contextlib.contextmanager
def _driver_watchdog(grace_s: float = 30) -> Iterator[None]:
    """Stop Playwright's driver by PID if leaving ``sync_playwright()`` takes over ``grace_s``.

    Leaving it closes the driver's stdin and waits for the driver to exit. Once, in a pytest-xdist
    worker at the very end of a whole-suite session, the driver never exited and that wait held the
    session until pytest-timeout's 600 s. The driver is this process's child running Playwright's
    ``run-driver``: ending it ends the wait, and nothing but this teardown is waiting on it.
    """
    import psutil

    done = threading.Event()

    def stop_driver() -> None:
        if done.wait(grace_s):
            return
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "run-driver" in " ".join(child.cmdline()):
                    child.kill()

    watchdog = threading.Thread(target=stop_driver, name="playwright-driver-watchdog", daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context at 1280x800; on failure every page of it is saved as a PNG."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for i, page in enumerate(ctx.pages):
                path = ARTIFACTS / f"{request.node.name}-{i}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    print(f"screenshot: {path}")
                except Exception as exc:  # a crashed page: say so, keep the test's own failure
                    print(f"screenshot of page {i} failed: {exc}")
        ctx.close()


def save_screenshot(page: Any, name: str, *, down_to: str = "main") -> None:
    """A picture for the README, when ``MLOPS_EDGE_SCREENSHOTS`` names a folder: the page from its
    top to the bottom of ``down_to``."""
    if SCREENSHOTS:
        folder = REPO_ROOT / SCREENSHOTS
        folder.mkdir(parents=True, exist_ok=True)
        box = page.locator(down_to).bounding_box()
        width = page.viewport_size["width"]
        page.screenshot(
            path=str(folder / name),
            clip={"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 12},
        )


# -- the environment ---------------------------------------------------------------------------------


@dataclass
class Stage:
    cloud: Any
    env: dict[str, str]
    state_machine_arn: str
    things: list[str]
    console_url: str
    example: dict[str, Any]
    row: list[float]  # one validation row's features, for a request to the device
    state_dir: Path
    pids: dict[str, int] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.cloud.client(service)

    def page_url(self, path: str) -> str:
        """The console's URL for ``path`` (the token goes with it; the console trades it for a cookie)."""
        base, _, query = self.console_url.partition("/executions?")
        return f"{base}{path}?{query}"

    def start(self, document: dict[str, Any], name: str) -> str:
        return str(
            self.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(document)
            )["executionArn"]
        )


def _first_row(csv_path: Path, target: str) -> list[float]:
    import csv

    with csv_path.open() as handle:
        record = next(csv.DictReader(handle))
    return [round(float(v), 6) for k, v in record.items() if k != target]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stage(chromium: str, tmp_path_factory: pytest.TempPathFactory, cdk_assembly: Any) -> Iterator[Stage]:
    from mlops_edge.environment.console_process import ConsoleProcess
    from mlops_edge.environment.deploy import python_for_devices
    from mlops_edge.environment.local_env import LocalEnvironment
    from mlops_edge.environment.run_data import demo_data, upload
    from pipeline.config import example_input

    state_dir = tmp_path_factory.mktemp("console")
    saved = dict(os.environ)
    local = LocalEnvironment(state_dir, cdk_out=cdk_assembly.directory, log=lambda _: None)
    console = None
    try:
        env = local.start_cloud()
        pipeline = local.deploy()
        local.start_devices(1)
        data = demo_data("diabetes", state_dir / "data")
        dataset = upload(local.cloud.client("s3"), pipeline.bucket, data)
        local.wait_devices()
        # The shipped example input, pointed at this environment: its dataset, the device's Python
        # (so the core does not build a venv from PyPI) and polls of a second, not half a minute.
        example = example_input()
        example["dataset"] = {**example["dataset"], **dataset}
        example["components"]["inference_configuration"]["PythonPath"] = python_for_devices()
        for loop in example["poll"].values():
            loop["interval_s"] = 1
        example_path = state_dir / "example-input.json"
        example_path.write_text(json.dumps(example, indent=2))
        console_env = {**os.environ, "MLOPS_EDGE_STATE_MACHINE_ARN": pipeline.state_machine_arn}
        console = ConsoleProcess(
            state_dir / "console.json",
            env=console_env,
            port=_free_port(),
            args=["--example-input", str(example_path)],
        )
        url = console.start(log=state_dir / "console.log")
        assert console.process is not None
        yield Stage(
            cloud=local.cloud,
            env=env,
            state_machine_arn=pipeline.state_machine_arn,
            things=local.things,
            console_url=url,
            example=example,
            row=_first_row(data.validation_csv, data.target),
            state_dir=state_dir,
            pids={"console": console.process.pid},
        )
    finally:
        if console is not None:
            console.stop()
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        sys.stdout.flush()
