"""From an HTTP request to the API call it makes: caller's access key, service, operation, params.

The service comes from the SigV4 credential scope (``Credential=AKID/date/region/SERVICE/…``, in
the ``Authorization`` header or, for a presigned URL, the ``X-Amz-Credential`` query parameter),
as moto's ``DomainDispatcherApplication`` finds it. A signing name may stand for several botocore
services (``greengrass``: Greengrass V2 and V1; ``sagemaker``: the API and its runtimes):
``SIGNING_NAMES`` lists them in the order they are tried, and the first whose service model
routes the request wins. Routing (``X-Amz-Target``, ``Action``, or the HTTP method and URI
template) and parameter parsing are moto's botocore-model-driven router and request parsers
(``moto.core.routing``, ``moto.core.parse``, themselves LocalStack's design), so the parameters
are what botocore serialized, shaped by the same service model.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from local_cloud.iam.exceptions import IamError, UnknownOperation

#: SigV4 signing name -> botocore service names, tried in order. A signing name not listed here is
#: the botocore service name itself (``lambda``, ``s3``, ``iot``, ``secretsmanager``…);
#: tests/unit/iam/test_calls.py checks every entry against botocore's service models.
SIGNING_NAMES: Mapping[str, tuple[str, ...]] = {
    "states": ("stepfunctions",),
    "greengrass": ("greengrassv2", "greengrass"),
    "iotdata": ("iot-data",),
    "sagemaker": (
        "sagemaker",
        "sagemaker-runtime",
        "sagemaker-featurestore-runtime",
        "sagemaker-a2i-runtime",
        "sagemaker-edge",
        "sagemaker-metrics",
    ),
    "s3": ("s3", "s3control"),
    "monitoring": ("cloudwatch",),
    "execute-api": ("apigatewaymanagementapi",),
}


class UnparsableRequest(IamError):
    """A signed request whose operation or parameters the service model cannot read."""


@dataclass(frozen=True)
class Credential:
    """The credential scope of a SigV4 signature."""

    access_key: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class ApiCall:
    """One API call as botocore names it."""

    service: str  # botocore service name
    operation: str  # botocore operation name
    params: Mapping[str, Any]
    region: str
    protocol: str  # the wire protocol the client spoke (for the refusal's form)


def credential_of(headers: Mapping[str, str], query_string: str | bytes = b"") -> Credential | None:
    """The SigV4 credential scope of a request, None when it is not SigV4-signed."""
    auth = headers.get("Authorization") or ""
    scope = ""
    if auth.startswith("AWS4-"):
        _, _, rest = auth.partition("Credential=")
        scope = rest.split(",", 1)[0].strip()
    elif query_string:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        if "X-Amz-Credential" in text:
            scope = (parse_qs(text).get("X-Amz-Credential") or [""])[0]
    parts = scope.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        return None
    return Credential(access_key=parts[0], date=parts[1], region=parts[2], service=parts[3])


def candidates(signing_name: str) -> tuple[str, ...]:
    return SIGNING_NAMES.get(signing_name, (signing_name,))


def identify(environ: Mapping[str, Any], body: bytes, credential: Credential) -> ApiCall:
    """The API call a request makes. ``environ`` is the WSGI environ (left untouched), ``body``
    the request body already read. Raises ``UnknownOperation`` when no service model routes it,
    ``UnparsableRequest`` when its parameters cannot be read."""
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import Request, determine_request_protocol
    from moto.core.routing import get_service_router
    from moto.core.utils import get_service_model
    from werkzeug.exceptions import NotFound

    request = Request({**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    tried = []
    for service in candidates(credential.service):
        try:
            model = get_service_model(service)
            operation, uri_params = get_service_router(service).match(request)
            protocol = determine_request_protocol(model, request.content_type)
        except (NotFound, NotImplementedError, LookupError) as exc:
            tried.append(f"{service} ({type(exc).__name__})")
            continue
        except Exception as exc:  # botocore's loader: no such service model
            tried.append(f"{service} ({type(exc).__name__}: {exc})")
            continue
        parser_cls = PROTOCOL_PARSERS.get(protocol)
        if parser_cls is None:
            raise UnparsableRequest(
                f"{service} {operation.name}: no request parser for protocol {protocol!r}"
            )
        try:
            params = parser_cls(operation).parse(
                {
                    "method": request.method,
                    "values": request.values,
                    "headers": request.headers,
                    "body": body,
                    "url_path": request.path,
                    "url_params": uri_params,
                }
            )
        except Exception as exc:
            raise UnparsableRequest(
                f"{service} {operation.name}: parameters unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        return ApiCall(service, operation.name, dict(params), credential.region, protocol)
    raise UnknownOperation(
        f"no operation of signing name {credential.service!r} matches {environ.get('REQUEST_METHOD')} "
        f"{environ.get('PATH_INFO')} (tried {', '.join(tried) or 'nothing'})"
    )
