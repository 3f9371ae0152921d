"""Server side of botocore's rest-json protocol, driven entirely by the service model.

botocore ships only the client half (serialize requests, parse responses). This module is the
mirror: it matches a request to an operation by the model's ``requestUri`` template, parses URI
labels, query string, headers and JSON body into the operation's input members, and serializes
an output dict (or an error) exactly where the model puts each member. Providers then deal only in
plain dicts keyed by the API's member names, the way LocalStack's skeleton works.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from werkzeug.wrappers import Request, Response


class ServiceError(Exception):
    """An error whose ``code`` is the name of an error shape of the service model."""

    def __init__(self, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]


def _compile(uri: str) -> re.Pattern[str]:
    path = uri.split("?", 1)[0]
    out = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            out += f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(part)
    return re.compile(f"^{out}/?$")


class RestJsonService:
    """Routes, parses and serializes for one rest-json service of botocore."""

    def __init__(self, service_name: str) -> None:
        self.model: ServiceModel = botocore.session.get_session().get_service_model(service_name)
        self.routes: list[Route] = []
        for name in self.model.operation_names:
            op = self.model.operation_model(name)
            self.routes.append(Route(op, op.http["method"], _compile(op.http["requestUri"])))
        # Literal segments first: /components/{arn}/versions must win over /components/{arn}.
        self.routes.sort(key=lambda r: -len(r.pattern.pattern))

    # -- requests ------------------------------------------------------------------------------
    def match(self, request: Request) -> tuple[OperationModel, dict[str, str]] | None:
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        path = urlsplit(raw).path
        for route in self.routes:
            if route.method != request.method:
                continue
            found = route.pattern.match(path)
            if found:
                return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def parse(self, op: OperationModel, labels: dict[str, str], request: Request) -> dict[str, Any]:
        shape = op.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = {}
        query = parse_qs(
            urlsplit(request.environ.get("RAW_URI") or "").query or request.query_string.decode()
        )
        body_raw = request.get_data(cache=True)
        body = json.loads(body_raw) if body_raw.strip() else {}
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = labels[wire]
            elif location == "querystring":
                if wire in query:
                    values = query[wire]
                    params[name] = (
                        [self._scalar(member.member, v) for v in values]
                        if member.type_name == "list"
                        else self._scalar(member, values[0])
                    )
            elif location == "header":
                if wire in request.headers:
                    params[name] = self._scalar(member, request.headers[wire])
            elif wire in body:
                params[name] = self._from_json(member, body[wire])
        return params

    @staticmethod
    def _scalar(shape: Shape, value: str) -> Any:
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name == "boolean":
            return value.lower() == "true"
        return value

    def _from_json(self, shape: Shape, value: Any) -> Any:
        kind = shape.type_name
        if value is None:
            return None
        if kind == "structure":
            return {k: self._from_json(shape.members[k], v) for k, v in value.items() if k in shape.members}
        if kind == "list":
            return [self._from_json(shape.member, v) for v in value]
        if kind == "map":
            return {k: self._from_json(shape.value, v) for k, v in value.items()}
        if kind == "blob":
            return base64.b64decode(value)
        return value

    # -- responses -----------------------------------------------------------------------------
    def serialize(self, op: OperationModel, result: dict[str, Any]) -> Response:
        status = int(op.http.get("responseCode", 200))
        shape = op.output_shape
        headers: dict[str, str] = {}
        body: dict[str, Any] = {}
        if shape is not None:
            for name, member in shape.members.items():
                if name not in result or result[name] is None:
                    continue
                location = member.serialization.get("location")
                wire = member.serialization.get("name", name)
                if location == "header":
                    headers[wire] = str(result[name])
                elif location == "statusCode":
                    status = int(result[name])
                else:
                    body[wire] = self._to_json(member, result[name])
        if status == 204:
            return Response(status=204, headers=headers)
        return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")

    def _to_json(self, shape: Shape, value: Any) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return {
                m.serialization.get("name", k): self._to_json(m, value[k])
                for k, m in shape.members.items()
                if k in value and value[k] is not None
            }
        if kind == "list":
            return [self._to_json(shape.member, v) for v in value]
        if kind == "map":
            return {k: self._to_json(shape.value, v) for k, v in value.items()}
        if kind == "blob":
            raw = value.encode() if isinstance(value, str) else value
            return base64.b64encode(raw).decode()
        if kind == "timestamp":
            if isinstance(value, dt.datetime):
                return value.timestamp()
            return float(value)
        return value

    def error(self, exc: ServiceError) -> Response:
        status = 400
        members: list[str] = ["message"]
        for shape in self.model.error_shapes:
            if shape.name == exc.code:
                status = int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
                members = list(shape.members)
                break
        body = {"message": exc.message, **{k: v for k, v in exc.fields.items() if k in members}}
        return Response(
            json.dumps(body),
            status=status,
            headers={"x-amzn-ErrorType": exc.code},
            mimetype="application/json",
        )
