"""The patch that signs moto's ASL interpreter's integrations with the state machine's role
(local_cloud/services/stepfunctions/credentials.py): it must fail loudly if moto moves."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest

from local_cloud.services.stepfunctions import credentials

ROLE = "arn:aws:iam::123456789012:role/StateMachineRole"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline"


def test_moto_is_the_version_and_shape_the_patch_was_written_for() -> None:
    credentials.verify()


def test_another_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials.metadata, "version", lambda name: "5.3.0")
    with pytest.raises(credentials.MotoInternalsChanged, match=r"patches moto==5\.2\.5, found 5\.3\.0"):
        credentials.verify()


def test_a_moved_function_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    key = (credentials._BOTO_CLIENT, "boto_client_for")
    monkeypatch.setitem(credentials.FINGERPRINTS, key, (*credentials.FINGERPRINTS[key], "session_token="))
    with pytest.raises(credentials.MotoInternalsChanged, match="no longer contains 'session_token='"):
        credentials.verify()


def test_a_new_module_creating_clients_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "BOTO_CLIENT_USERS", credentials.BOTO_CLIENT_USERS[:-1])
    with pytest.raises(credentials.MotoInternalsChanged, match="create clients but are not patched"):
        credentials.verify()


def _key(client: Any) -> tuple[str, str | None]:
    creds = client._request_signer._credentials
    return creds.access_key, creds.token


def test_every_module_signs_with_the_role_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_PORT", "4999")
    asked: list[tuple[str, str]] = []
    session = SimpleNamespace(access_key_id="ASIAROLE", secret_access_key="s", session_token="t")

    def provider(role_arn: str, source_arn: str) -> Any:
        asked.append((role_arn, source_arn))
        return session

    credentials.apply(provider)
    try:
        state_credentials = credentials.sourced_credentials(ROLE, MACHINE)
        for name in credentials.BOTO_CLIENT_USERS:
            client = importlib.import_module(name).boto_client_for(
                region="us-east-1", service="lambda", state_credentials=state_credentials
            )
            assert _key(client) == ("ASIAROLE", "t"), name
            assert client.meta.endpoint_url == "http://localhost:4999"
            assert client.meta.config.retries["total_max_attempts"] == 1
        assert set(asked) == {(ROLE, MACHINE)}
        # no session (IAM off, or audit finding the role not assumable): moto's own client
        credentials.apply(lambda role_arn, source_arn: None)
        client = importlib.import_module(credentials._BOTO_CLIENT).boto_client_for(
            region="us-east-1", service="lambda", state_credentials=state_credentials
        )
        assert _key(client) == ("ak", None)
    finally:
        credentials.apply(None)


def test_a_provider_refusal_fails_the_call() -> None:
    def refuse(role_arn: str, source_arn: str) -> Any:
        raise RuntimeError(
            "Neither the global service principal states.amazonaws.com, nor the regional one ..."
        )

    credentials.apply(refuse)
    try:
        module = importlib.import_module(f"{credentials._TASK}.lambda_eval_utils")
        with pytest.raises(RuntimeError, match="Neither the global service principal"):
            module.boto_client_for(
                region="us-east-1",
                service="lambda",
                state_credentials=credentials.sourced_credentials(ROLE, ""),
            )
    finally:
        credentials.apply(None)


def test_state_credentials_carry_the_state_machine_arn() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask

    credentials.apply(None)
    env = SimpleNamespace(
        aws_execution_details=SimpleNamespace(role_arn=ROLE),
        states=SimpleNamespace(
            context_object=SimpleNamespace(
                context_object_data={"StateMachine": {"Id": MACHINE, "Name": "Pipeline"}}
            )
        ),
    )
    got = StateTask._eval_state_credentials(SimpleNamespace(credentials=None), env)
    assert (got.role_arn, got.source_arn) == (ROLE, MACHINE)
    assert isinstance(got, credentials._state_credentials_cls())
