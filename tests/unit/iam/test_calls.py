"""From a request to the API call it makes: credential scope, service, operation, parameters."""

from __future__ import annotations

import botocore.session
import pytest

from local_cloud.iam import UnknownOperation
from local_cloud.iam.enforce.calls import SIGNING_NAMES, credential_of, identify
from tests.unit.iam.wire import signed


def test_credential_scope_from_the_authorization_header() -> None:
    auth = (
        "AWS4-HMAC-SHA256 Credential=ASIAKEY/20260101/eu-west-1/states/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    cred = credential_of({"Authorization": auth})
    assert cred is not None
    assert (cred.access_key, cred.date, cred.region, cred.service) == (
        "ASIAKEY",
        "20260101",
        "eu-west-1",
        "states",
    )


def test_credential_scope_of_a_presigned_url() -> None:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAKEY%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    )
    cred = credential_of({}, query)
    assert cred is not None and (cred.access_key, cred.service) == ("ASIAKEY", "s3")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "AWS AKID:signature"},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=only/three/parts"},
    ],
)
def test_unsigned_or_not_sigv4_has_no_credential(headers: dict[str, str]) -> None:
    assert credential_of(headers) is None


def test_signing_names_are_botocores() -> None:
    """Every alias maps a signing name to services that really sign with it."""
    session = botocore.session.get_session()
    for signing_name, services in SIGNING_NAMES.items():
        for service in services:
            meta = session.get_service_model(service).metadata
            assert meta.get("signingName", meta["endpointPrefix"]) == signing_name, service


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("lambda", "invoke", {"FunctionName": "fn:live", "Payload": b"{}"}, {"FunctionName": "fn:live"}),
        ("stepfunctions", "start_execution", {"stateMachineArn": "arn:sm", "name": "n"}, {"name": "n"}),
        (
            "s3",
            "put_object",
            {"Bucket": "b", "Key": "a/b c.txt", "Body": b"x", "Tagging": "k=v"},
            {"Bucket": "b", "Key": "a/b c.txt", "Tagging": "k=v"},
        ),
        ("s3", "list_objects_v2", {"Bucket": "b", "Prefix": "p/"}, {"Bucket": "b", "Prefix": "p/"}),
        ("s3", "get_bucket_policy", {"Bucket": "b"}, {"Bucket": "b"}),
        (
            "greengrassv2",
            "list_effective_deployments",
            {"coreDeviceThingName": "edge-1"},
            {"coreDeviceThingName": "edge-1"},
        ),
        ("iot", "describe_thing_group", {"thingGroupName": "fleet"}, {"thingGroupName": "fleet"}),
        ("iam", "get_role", {"RoleName": "r"}, {"RoleName": "r"}),
        ("sts", "get_caller_identity", {}, {}),
        ("secretsmanager", "get_secret_value", {"SecretId": "s"}, {"SecretId": "s"}),
        (
            "sagemaker",
            "describe_training_job",
            {"TrainingJobName": "j"},
            {"TrainingJobName": "j"},
        ),
    ],
)
def test_identify_finds_operation_and_parameters(
    service: str, operation: str, params: dict[str, object], expected: dict[str, object]
) -> None:
    environ, body = signed(service, operation, params)
    cred = credential_of({"Authorization": environ["HTTP_AUTHORIZATION"]})
    assert cred is not None
    call = identify(environ, body, cred)
    model = botocore.session.get_session().get_service_model(service)
    assert call.service == service
    assert call.operation == next(op for op in model.operation_names if botocore.xform_name(op) == operation)
    assert {k: call.params.get(k) for k in expected} == expected
    assert call.region == "us-east-1"
    assert call.protocol == model.metadata["protocol"]


def test_a_request_no_model_routes_is_unknown() -> None:
    environ, body = signed("lambda", "invoke", {"FunctionName": "fn"})
    for key in ("PATH_INFO", "RAW_URI", "REQUEST_URI"):
        environ[key] = "/no/such/route"
    cred = credential_of({"Authorization": environ["HTTP_AUTHORIZATION"]})
    assert cred is not None
    with pytest.raises(UnknownOperation, match="no operation of signing name 'lambda'"):
        identify(environ, body, cred)
