"""What the device tests need besides the local cloud: publish components, deploy, talk MQTT.

``FakeGreengrass`` answers ``resolve_component_candidates`` from recipes published here (the
local cloud's greengrassv2 control plane is a separate piece of work); S3, the broker and the
device identities are the real local cloud's. Deployments reach the core the way the control
plane sends them (contracts §4): a job document on ``notify-next``; statuses come back on
``jobs/{jobId}/update``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import nodesemver
import yaml

from components import build
from pipeline.mqtt import MqttClient, MqttSettings

MODEL = "com.example.test.Model"
INFERENCE = "com.example.test.Inference"


class FakeGreengrass:
    """``resolve_component_candidates`` over an in-memory recipe table."""

    def __init__(self) -> None:
        self.recipes: dict[str, dict[str, dict[str, Any]]] = {}

    def resolve_component_candidates(self, platform: dict, componentCandidates: list[dict]) -> dict:
        out = []
        for cand in componentCandidates:
            name = cand["componentName"]
            versions = self.recipes.get(name, {})
            version = cand.get("componentVersion")
            if version is None:
                ok = [
                    v
                    for v in versions
                    if all(
                        nodesemver.satisfies(v, r, loose=False) for r in cand["versionRequirements"].values()
                    )
                ]
                version = nodesemver.max_satisfying(ok, "*", loose=False) if ok else None
            if version not in versions:
                from botocore.exceptions import ClientError

                raise ClientError(
                    {"Error": {"Code": "ResourceNotFoundException", "Message": f"{name} {version}"}},
                    "ResolveComponentCandidates",
                )
            recipe = json.dumps(versions[version]).encode()
            out.append({"componentName": name, "componentVersion": version, "recipe": recipe})
        return {"resolvedComponentVersions": out}


class Publisher:
    """Uploads artifacts and registers recipes, with digests, as CreateComponentVersion would."""

    def __init__(self, s3: Any, bucket: str, greengrass: FakeGreengrass) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.gg = greengrass

    def publish(self, recipe: dict[str, Any], artifact: bytes) -> dict[str, Any]:
        art = recipe["Manifests"][0]["Artifacts"][0]
        key = art["URI"].split(f"s3://{self.bucket}/", 1)[1]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=artifact)
        art["Digest"] = base64.b64encode(hashlib.sha256(artifact).digest()).decode()
        art["Algorithm"] = "SHA-256"
        self.gg.recipes.setdefault(recipe["ComponentName"], {})[recipe["ComponentVersion"]] = recipe
        return recipe

    def model(self, model_dir: Path, registry_version: int, *, artifact: bytes | None = None) -> str:
        version = build.model_version(registry_version)
        uri = f"s3://{self.bucket}/components/{MODEL}/{version}/model.zip"
        recipe = build.render_recipe(
            "model", component_name=MODEL, component_version=version, artifact_uri=uri
        )
        self.publish(recipe, artifact or build.model_artifact(model_dir))
        return version

    def inference(self, artifact: bytes | None = None) -> str:
        data = artifact or build.inference_artifact()
        version = build.inference_version(data)
        uri = f"s3://{self.bucket}/components/{INFERENCE}/{version}/inference.zip"
        recipe = build.render_recipe(
            "inference",
            component_name=INFERENCE,
            component_version=version,
            artifact_uri=uri,
            model_component_name=MODEL,
        )
        self.publish(recipe, data)
        return version

    def tamper(self, name: str, version: str) -> None:
        """Change the artifact's bytes in S3 after publishing (the recipe keeps the old digest)."""
        uri = self.gg.recipes[name][version]["Manifests"][0]["Artifacts"][0]["URI"]
        key = uri.split(f"s3://{self.bucket}/", 1)[1]
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 0xFF]))


def zip_with(base: bytes, replace: dict[str, bytes]) -> bytes:
    """A copy of zip ``base`` with some members replaced (bad models, crashing code)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, replace.get(item.filename, src.read(item.filename)))
    return out.getvalue()


def pipeline_settings(local_cloud: Any) -> MqttSettings:
    """MQTT settings of the privileged pipeline identity, under a client id of its own."""
    ident = local_cloud.pipeline_identity
    return MqttSettings(
        host=local_cloud.mqtt.host,
        port=local_cloud.mqtt.port,
        ca_path=str(ident.ca_path),
        cert_path=str(ident.cert_path),
        key_path=str(ident.key_path),
        client_id=f"mlops-edge-tool-device-tests-{uuid.uuid4().hex[:8]}",
    )


class Operator:
    """The cloud side on MQTT, with the privileged pipeline identity."""

    def __init__(self, local_cloud: Any) -> None:
        self.client = MqttClient(pipeline_settings(local_cloud))
        self._cond = threading.Condition()
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed: set[str] = set()

    def close(self) -> None:
        self.client.close()

    def watch(self, topic_filter: str) -> None:
        if topic_filter in self._subscribed:
            return
        self._subscribed.add(topic_filter)

        def on_message(topic: str, payload: bytes) -> None:
            with self._cond:
                self.messages.append((topic, bytes(payload)))
                self._cond.notify_all()

        self.client.subscribe(topic_filter, on_message)

    def wait(self, predicate: Any, timeout: float) -> tuple[str, bytes] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.messages:
                    if predicate(*item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def deploy(
        self,
        thing: str,
        components: dict[str, dict[str, Any]],
        *,
        policy: str = "ROLLBACK",
        group: str = "thinggroup/test-fleet",
        timeout: float = 90.0,
        answering_next: bool = False,
    ) -> dict[str, Any]:
        """Send a deployment and wait for its final status update.

        It goes out as a ``notify-next`` event, or with ``answering_next`` as the answer to the
        core's DescribeJobExecution of ``$next`` (what a core gets for a job queued before it
        connected).
        """
        job_id = f"job-{uuid.uuid4().hex[:10]}"
        self.watch(f"$aws/things/{thing}/jobs/+/update")
        document = {
            "deploymentId": job_id,
            "configurationArn": f"arn:aws:greengrass:us-east-1:123456789012:configuration:{group}:1",
            "groupName": group,
            "creationTimestamp": int(time.time() * 1000),
            "components": components,
            "failureHandlingPolicy": policy,
            "componentUpdatePolicy": {"timeout": 60, "action": "NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": 30},
            "requiredCapabilities": [],
        }
        execution = {
            "jobId": job_id,
            "thingName": thing,
            "status": "QUEUED",
            "queuedAt": int(time.time()),
            "executionNumber": 1,
            "versionNumber": 1,
            "jobDocument": document,
        }
        message: dict[str, Any] = {"timestamp": int(time.time()), "execution": execution}
        jobs = f"$aws/things/{thing}/jobs"
        if answering_next:
            message["clientToken"] = f"{thing}-next"
        self.client.publish(
            f"{jobs}/$next/get/accepted" if answering_next else f"{jobs}/notify-next", message
        )
        topic = f"$aws/things/{thing}/jobs/{job_id}/update"

        def final(t: str, p: bytes) -> bool:
            return t == topic and json.loads(p)["status"] in ("SUCCEEDED", "FAILED", "REJECTED")

        found = self.wait(final, timeout)
        assert found is not None, f"no final status for {job_id} within {timeout}s"
        return json.loads(found[1])

    def infer(
        self,
        thing: str,
        request: dict[str, Any] | bytes,
        *,
        timeout: float = 15.0,
        resend_s: float | None = None,
    ) -> dict[str, Any]:
        """Publish one request on the device's request topic and wait for the result with its id.

        ``resend_s``: publish again at that period until answered, for the first request after a
        deployment (the component may still be subscribing when the deployment reports success).

        Every publish happens *outside* ``_cond``: it waits for its PUBACK, which paho reads on
        its network thread, the thread that runs ``on_message`` and needs ``_cond`` for every
        watched message (telemetry, monitoring, health: several a second once watched). Holding
        ``_cond`` across a resend made each one wait out the 10 s PUBACK timeout while that
        thread drained one message per resend, so a result queued behind telemetry never
        arrived (test_core_restart_restores_components, 2 runs in 5 of its module).
        """
        self.watch(f"edge/{thing}/inference/result")
        payload = request if isinstance(request, bytes) else json.dumps(request).encode()
        request_id = None if isinstance(request, bytes) else request.get("id")
        marker = len(self.messages)
        topic = f"edge/{thing}/inference/request"
        self.client.publish(topic, payload)
        deadline = time.monotonic() + timeout
        next_send = time.monotonic() + resend_s if resend_s else math.inf
        while True:
            with self._cond:
                while True:
                    for t, p in self.messages[marker:]:
                        if _is_result(t, p, thing, request_id):
                            return json.loads(p)
                    marker = len(self.messages)  # what was looked at does not need a second look
                    now = time.monotonic()
                    assert now < deadline, f"no result for {request!r} within {timeout}s"
                    if now >= next_send:
                        break  # resend, after letting go of _cond
                    self._cond.wait(min(deadline, next_send) - now)
            self.client.publish(topic, payload)
            next_send = time.monotonic() + (resend_s or math.inf)


def _is_result(topic: str, payload: bytes, thing: str, request_id: str | None) -> bool:
    """A result on ``thing``'s result topic, for ``request_id`` when the request had one."""
    if topic != f"edge/{thing}/inference/result":
        return False
    body = json.loads(payload)
    return body.get("id") == request_id if request_id is not None else True


def model_zip_with_bad_manifest(model_dir: Path) -> bytes:
    """A model artifact whose model.json digest does not match model.onnx: it must not load."""
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["sha256"] = "0" * 64
    return zip_with(build.model_artifact(model_dir), {"model.json": json.dumps(manifest).encode()})


def crashing_inference_artifact() -> bytes:
    """Inference code that dies as soon as it starts serving."""
    base = build.inference_artifact()
    # `check` (Install) must still pass so the crash happens at start, in Run
    main = zipfile.ZipFile(io.BytesIO(base)).read("inference_component/__main__.py")
    head = b"def serve(model_root: Path) -> int:\n"
    patched = main.replace(head, head + b'    """Crash on purpose."""\n    sys.exit(7)\n', 1)
    assert patched != main
    return zip_with(base, {"inference_component/__main__.py": patched})


def recipe_yaml(recipe: dict[str, Any]) -> str:
    return yaml.safe_dump(recipe)


LOCAL_CLIENT = "com.example.test.LocalClient"

_LOCAL_CLIENT_CODE = b'''"""Another component asking the inference component over local pub/sub (Greengrass IPC)."""
import json, sys, threading
from pathlib import Path
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

out = Path(sys.argv[1])
row = json.loads(sys.argv[2])
client = GreengrassCoreIPCClientV2()
got = threading.Event()
answers = []

def on_event(event):
    answers.append(json.loads(event.binary_message.message))
    got.set()

client.subscribe_to_topic(topic="edge/inference/result", on_stream_event=on_event)
request = json.dumps({"id": "local-1", "instances": [row]}).encode()
for _ in range(10):  # the inference component may still be subscribing
    client.publish_to_topic(topic="edge/inference/request",
                            publish_message=PublishMessage(binary_message=BinaryMessage(message=request)))
    if got.wait(1.0):
        break
denied = "no"
try:
    client.publish_to_iot_core(topic_name="edge/somewhere-else/x", qos="1", payload=b"x")
except Exception as exc:
    denied = type(exc).__name__
out.write_text(json.dumps({"answers": answers, "denied": denied}))
client.close()
'''


def local_client_recipe(bucket: str, version: str, row: list[float]) -> tuple[dict[str, Any], bytes]:
    """A component that asks over local pub/sub and records the answer in its work dir."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("client.py", _LOCAL_CLIENT_CODE)
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": LOCAL_CLIENT,
        "ComponentVersion": version,
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                "PythonPath": "python3",
                "accessControl": {
                    "aws.greengrass.ipc.pubsub": {
                        f"{LOCAL_CLIENT}:pubsub:1": {
                            "operations": ["aws.greengrass#PublishToTopic"],
                            "resources": ["edge/inference/request"],
                        },
                        f"{LOCAL_CLIENT}:pubsub:2": {
                            "operations": ["aws.greengrass#SubscribeToTopic"],
                            "resources": ["edge/inference/result"],
                        },
                    }
                },
            }
        },
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Artifacts": [
                    {
                        "URI": f"s3://{bucket}/components/{LOCAL_CLIENT}/{version}/client.zip",
                        "Unarchive": "ZIP",
                    }
                ],
                "Lifecycle": {
                    "Run": (
                        "exec {configuration:/PythonPath} {artifacts:decompressedPath}/client/client.py "
                        f"{{work:path}}/answer.json '{json.dumps(row)}'"
                    )
                },
            }
        ],
    }
    return recipe, buf.getvalue()
