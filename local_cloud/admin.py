"""The local admin API (``/_local_cloud/...``): things only the local cloud needs, never AWS.

``POST /_local_cloud/devices`` provisions a device: IoT thing + certificate (signed by the local CA,
registered with the IoT API) + thing group membership + MQTT ACL entry. It lives in the endpoint
process because that process owns the broker and its ACL.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext

PREFIX = "/_local_cloud/"


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


class AdminProvider:
    """Serves health and device provisioning."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def handle(self, request: Request) -> Response | None:
        if not request.path.startswith(PREFIX):
            return None
        route = request.path[len(PREFIX) :]
        if route == "health":
            return _json({"ok": True, "port": self.ctx.port})
        if route == "settings" and request.method == "POST":
            # test knobs; today only the length of the local jobs "minute" (rollout rates and
            # in-progress timeouts); null goes back to the endpoint's MLOPS_EDGE_LOCAL_MINUTE_S
            body = request.get_json(force=True)
            settings = self.ctx.extras.setdefault("settings", {})
            if body.get("job_timeout_minute_s", 0) is None:
                settings.pop("job_timeout_minute_s", None)
            elif "job_timeout_minute_s" in body:
                settings["job_timeout_minute_s"] = float(body["job_timeout_minute_s"])
            return _json(settings)
        if route == "devices" and request.method == "POST":
            body = request.get_json(force=True)
            try:
                return _json(self.provision(body["thing_name"], body.get("thing_group")))
            except ValueError as exc:
                return _json({"message": str(exc)}, 400)
        return _json({"message": f"no such local_cloud route: {route}"}, 404)

    def provision(self, thing_name: str, thing_group: str | None) -> dict[str, Any]:
        """Idempotent: provisioning the same thing again returns its existing identity."""
        broker = self.ctx.extras["broker"]
        iot = self.ctx.client("iot")
        issued = broker.add_device(thing_name)
        try:
            iot.describe_thing(thingName=thing_name)
        except iot.exceptions.ResourceNotFoundException:
            iot.create_thing(thingName=thing_name)
        principals = iot.list_thing_principals(thingName=thing_name)["principals"]
        if not principals:
            cert = iot.register_certificate_without_ca(certificatePem=issued.cert_pem, status="ACTIVE")
            iot.attach_thing_principal(thingName=thing_name, principal=cert["certificateArn"])
            principals = [cert["certificateArn"]]
        if thing_group:
            try:
                iot.describe_thing_group(thingGroupName=thing_group)
            except iot.exceptions.ResourceNotFoundException:
                iot.create_thing_group(thingGroupName=thing_group)
            iot.add_thing_to_thing_group(thingGroupName=thing_group, thingName=thing_name)
        return {
            "thing_name": thing_name,
            "thing_group": thing_group,
            "certificate_arn": principals[0],
            "cert_path": str(issued.cert_path),
            "key_path": str(issued.key_path),
            "ca_path": str(issued.ca_path),
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker.port,
        }
