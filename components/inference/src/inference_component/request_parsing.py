"""Request bytes in, request object out: parsing, id validation, compact JSON encoding.

Every refusal is a ``RequestError`` with a stable code the caller gets back in its result.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

#: A request id is echoed in its answer, so it must be short enough to always fit one.
MAX_ID_CHARS = 256


class RequestError(Exception):
    """A request the service refuses, with a stable code for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _float32_digits(predictions: list[Any]) -> list[Any]:
    """Predictions with each number written with the digits of the model's float32 output only.

    The model computes float32; the engine hands its values over as Python floats, which JSON
    writes with float64's 17 digits (``151.83592224121094``). The shortest decimal that is the
    same float32 (``151.83592``) is the same answer in a third fewer bytes, and bytes matter:
    a device publishes at most 512 KiB/s to IoT Core, which at 17 digits holds 256-row batches
    to ~70 results/s (~18,000 rows/s) instead of the 100 publishes/s allowed. Regression values
    and class probabilities are rewritten; labels and classes stay as they are.
    """
    values: list[float] = []
    for p in predictions:
        if not isinstance(p, dict):
            return predictions
        if "value" in p:
            values.append(p["value"])
        values.extend((p.get("probabilities") or {}).values())
    if not values or not all(type(v) is float for v in values):
        return predictions
    short = iter(map(float, np.array(values, dtype=np.float32).astype(str).tolist()))
    out = []
    for p in predictions:
        q = dict(p)
        if "value" in q:
            q["value"] = next(short)
        if q.get("probabilities"):
            q["probabilities"] = {k: next(short) for k in q["probabilities"]}
        out.append(q)
    return out


def _parse(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The request object, or a ``RequestError`` naming what is wrong with the bytes.

    A Lambda-style event (``{"body": "<JSON request>"}``, the Greengrass reference sample's form)
    carries the whole request, its ``id`` included, in its body; an ``id`` beside the body is
    used as is and the engine reads the body.
    """
    if len(payload) > max_bytes:
        raise RequestError("TOO_LARGE", f"request is {len(payload)} bytes, limit {max_bytes}")
    if not payload.strip():
        raise RequestError("EMPTY_REQUEST", "request payload is empty")
    request = _loads(payload)
    if not isinstance(request, dict):
        raise RequestError("INVALID_REQUEST", f"request must be a JSON object, got {type(request).__name__}")
    body = request.get("body")
    if "id" not in request and isinstance(body, str | bytes) and set(request) == {"body"}:
        inner = _loads(body)
        if isinstance(inner, dict) and "id" in inner:
            return inner
    return request


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError("INVALID_JSON", f"request is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(
            "INVALID_JSON",
            "request nests arrays/objects too deeply to be read (a request needs at most 4 levels)",
        ) from None


#: Envelopes whose one row the engine may be handed alone (``body`` is a string, never a row).
_ROW_ENVELOPES = ("instances", "rows", "features", "inputs")
_NUMBERS = frozenset((float, int))


def _single_row(body: dict[str, Any], features: frozenset[str]) -> Any:
    """``{"instances": [row]}`` -> ``row`` when the row is plain numbers; else ``body`` as it is.

    The engine answers one bare row of finite numbers on its fast path (~20 us) and an envelope
    on its general one (~45 us); the answer is the same (``predictions`` is a one-element list
    either way), and so is every error, because only rows the general path would read as one
    flat row are unwrapped. A key that is also a feature name is a feature, not an envelope.
    """
    if len(body) != 1:
        return body
    key, rows = next(iter(body.items()))
    if key not in _ROW_ENVELOPES or key in features or type(rows) is not list or len(rows) != 1:
        return body
    row = rows[0]
    if type(row) is list and row and _NUMBERS.issuperset(map(type, row)):
        return row
    return body


def _request_id(payload: bytes, max_bytes: int) -> str | None:
    """The id of a request being rejected, if it has a usable one (it is parsed, not predicted)."""
    try:
        request_id = _parse(payload, max_bytes).get("id")
    except RequestError:
        return None
    return request_id if _valid_id(request_id) else None


def _valid_id(request_id: Any) -> bool:
    return isinstance(request_id, str) and 0 < len(request_id) <= MAX_ID_CHARS
