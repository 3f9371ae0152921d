"""Small helpers around boto3 shared by the cores: S3 URIs, immutable objects, error mapping."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.core.exceptions import ArtifactConflict, TransientError

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerException",
    "InternalError",
    "SlowDown",
    "RequestTimeout",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"404", "NoSuchKey", "NotFound", "ResourceNotFoundException"} or status == 404


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Turns throttling/5xx/connection errors into :class:`TransientError` so the ASL retries."""
    try:
        yield
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if error_code(exc) in _TRANSIENT_CODES or int(status) >= 500:
            raise TransientError(f"{what}: {exc}") from exc
        raise
    except BotoCoreError as exc:
        raise TransientError(f"{what}: {exc}") from exc


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; raises ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_immutable(s3: Any, bucket: str, key: str, data: bytes, *, content_type: str) -> tuple[str, bool]:
    """Writes ``data`` once at ``key``; returns ``(sha256, reused)``.

    An existing object with the same SHA-256 (user metadata ``sha256``) is reused; different bytes
    at the same key raise :class:`ArtifactConflict` — immutable keys are never overwritten.
    """
    digest = sha256_hex(data)
    with transient_errors(f"s3 head s3://{bucket}/{key}"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if not is_not_found(exc):
                raise
            head = None
    if head is not None:
        existing = head.get("Metadata", {}).get("sha256")
        if existing == digest:
            return digest, True
        raise ArtifactConflict(
            f"s3://{bucket}/{key} already exists with sha256 {existing or 'unknown'}, not {digest}; "
            "artifact keys are immutable: find out who wrote it before deleting anything"
        )
    if not supports_conditional_put(s3):
        return _put_then_confirm(s3, bucket, key, data, digest=digest, content_type=content_type)
    with transient_errors(f"s3 put s3://{bucket}/{key}"):
        try:
            # Conditional write: of two writers racing for the same key only one can win.
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": digest},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise
            return put_immutable(s3, bucket, key, data, content_type=content_type)
    return digest, False


def supports_conditional_put(s3: Any) -> bool:
    """Whether this botocore knows ``PutObject``'s ``IfNoneMatch`` (added in botocore 1.35, August
    2024). Zip-packaged handlers run on the boto3 the managed runtime carries, which may be older:
    there the parameter fails client-side validation before any request is sent."""
    try:
        shape = s3.meta.service_model.operation_model("PutObject").input_shape
    except Exception:  # not a botocore client (a test double): assume the current API
        return True
    return "IfNoneMatch" in shape.members


def _put_then_confirm(
    s3: Any, bucket: str, key: str, data: bytes, *, digest: str, content_type: str
) -> tuple[str, bool]:
    """Without conditional writes: write, then read the key's digest back. Two writers of
    different bytes in the same instant can still both write; the one that reads back another
    digest raises :class:`ArtifactConflict`, so a lost race is never reported as success."""
    with transient_errors(f"s3 put s3://{bucket}/{key}"):
        s3.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata={"sha256": digest}
        )
        stored = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256")
    if stored != digest:
        raise ArtifactConflict(
            f"s3://{bucket}/{key} was written concurrently with sha256 {stored or 'unknown'}, not {digest}"
        )
    return digest, False


def read_object(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    with transient_errors(f"s3 get {uri}"):
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def write_object(s3: Any, uri: str, data: bytes, *, content_type: str) -> str:
    """Writes (or replaces) the object at ``uri`` and returns the URI: for state that a later poll
    rewrites, such as an execution's per-device detail. Artifacts use :func:`put_immutable`."""
    bucket, key = split_s3_uri(uri)
    with transient_errors(f"s3 put {uri}"):
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    return uri
