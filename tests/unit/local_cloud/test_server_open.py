"""The endpoint announces itself ready before its saved state is restored (issue 15): requests wait
until it is open, and get an AWS-shaped error naming the cause when the start-up failed. Step
Functions requests also wait for the interpreter's patches, applied in a thread of their own."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from local_cloud import server
from local_cloud.services.stepfunctions import provider as sfn_provider


def _moto(environ: dict[str, Any], start_response: Any) -> Any:
    return Response(b"from moto", status=200)(environ, start_response)


def test_requests_wait_until_open_then_go_through() -> None:
    app = server.DispatchLayer([], _moto)
    answers: list[Response] = []
    waiting = threading.Thread(target=lambda: answers.append(Client(app).get("/")))
    waiting.start()
    time.sleep(0.2)
    assert not answers  # held while the state is restored
    app.open()
    waiting.join(timeout=10)
    assert answers[0].status_code == 200 and answers[0].get_data() == b"from moto"


def test_a_failed_start_answers_503_with_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    app = server.DispatchLayer([], _moto)
    monkeypatch.setattr(server, "OPEN_TIMEOUT_S", 0.05)
    slow = Client(app).get("/")
    assert slow.status_code == 503 and "still starting" in json.loads(slow.get_data())["message"]
    app.open("RuntimeError: broker gone")
    failed = Client(app).get("/")
    assert failed.status_code == 503
    assert failed.headers["x-amzn-ErrorType"] == "ServiceUnavailable"
    assert (
        json.loads(failed.get_data())["message"] == "local cloud failed to start: RuntimeError: broker gone"
    )


def test_step_functions_requests_wait_for_the_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = sfn_provider.StepFunctionsProvider(ctx=None)  # type: ignore[arg-type]
    monkeypatch.setattr(sfn_provider, "PATCH_TIMEOUT_S", 0.05)
    app = server.DispatchLayer([provider.handle], _moto)
    app.open()
    headers = {"X-Amz-Target": "AWSStepFunctions.ListStateMachines"}
    assert Client(app).get("/", headers={"X-Amz-Target": "Other.Op"}).status_code == 200  # no wait
    assert Client(app).post("/", headers=headers).status_code == 500  # patches not in yet
    monkeypatch.setattr(sfn_provider.limits, "apply", lambda: (_ for _ in ()).throw(RuntimeError("moved")))
    provider.patch()
    refused = Client(app).post("/", headers=headers)
    assert refused.status_code == 500
    assert "could not be patched: RuntimeError: moved" in json.loads(refused.get_data())["message"]
