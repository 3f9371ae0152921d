"""VerifyOnDevice: golden requests over MQTT to every device, answers checked before anything is promoted.

A deployment that "succeeded" only says the components started. This proves inference works: each
device gets the golden rows (correlation id per request) on ``edge/<thing>/inference/request`` and
must answer on ``edge/<thing>/inference/result`` with the expected outputs (the ONNX model's own,
within tolerance) and the deployed model version. Latency p50/p99 is reported per device.

MQTT settings are configuration: ``MLOPS_EDGE_MQTT_HOST/PORT/CA/CERT/KEY`` (the local broker, or
files baked into the function), or ``MLOPS_EDGE_MQTT_SECRET_ID`` naming a secret
``{"certificate_pem", "private_key_pem", "ca_pem"}`` with the host from
``iot:DescribeEndpoint(iot:Data-ATS)`` when ``MLOPS_EDGE_MQTT_HOST`` is unset.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_runtime.inference.stats import percentile
from lambdas.core.aws import read_object, transient_errors
from lambdas.core.exceptions import ConfigurationError, VerificationFailed

ENV = "MLOPS_EDGE_MQTT_"


def mqtt_settings(env: Mapping[str, str], *, secrets: Callable[[], Any], iot: Callable[[], Any]) -> Any:
    """``pipeline.mqtt.MqttSettings`` from the environment (paths) or a Secrets Manager secret."""
    from pipeline.mqtt import MqttError, MqttSettings

    values = dict(env)
    secret_id = values.get(ENV + "SECRET_ID")
    if secret_id:
        with transient_errors(f"GetSecretValue {secret_id}"):
            secret = read_verifier_secret(secrets().get_secret_value(SecretId=secret_id), secret_id)
        folder = Path(tempfile.gettempdir()) / f"mqtt-{hashlib.sha256(secret_id.encode()).hexdigest()[:12]}"
        folder.mkdir(mode=0o700, exist_ok=True)
        for name, key in (("CERT", "certificate_pem"), ("KEY", "private_key_pem"), ("CA", "ca_pem")):
            if secret.get(key):
                path = folder / f"{key}.pem"
                path.write_text(secret[key])
                path.chmod(0o600)
                values[ENV + name] = str(path)
    if not values.get(ENV + "HOST"):
        with transient_errors("DescribeEndpoint"):
            values[ENV + "HOST"] = iot().describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    values.setdefault(ENV + "PORT", "8883")
    try:
        return MqttSettings.from_env(values)
    except MqttError as exc:
        raise ConfigurationError(f"cannot verify on devices: {exc}") from exc


#: What the secret must hold (docs/deploy-aws.md, "The verifier's certificate").
SECRET_KEYS = ("certificate_pem", "private_key_pem")
_SETUP_HINT = (
    "create the verifier's IoT certificate and put it in the secret once, as docs/deploy-aws.md "
    "describes (aws secretsmanager put-secret-value --secret-id {id} --secret-string "
    '\'{{"certificate_pem": ..., "private_key_pem": ..., "ca_pem": ...}}\')'
)


def read_verifier_secret(value: Mapping[str, Any], secret_id: str) -> dict[str, str]:
    """The certificate the verifier connects with, or a :class:`ConfigurationError` that says how
    to provide it. Until the one-time manual step is done the secret holds the random string the
    stack generated, which is not JSON: say so instead of failing with a JSONDecodeError."""
    hint = _SETUP_HINT.format(id=secret_id)
    text = value.get("SecretString")
    if text is None:
        raise ConfigurationError(
            f"secret {secret_id} holds binary data, not the verifier's certificate: {hint}"
        )
    try:
        secret = json.loads(text)
    except ValueError:
        raise ConfigurationError(
            f"secret {secret_id} does not hold the verifier's certificate yet (it still holds the "
            f"placeholder the stack generated): {hint}"
        ) from None
    if not isinstance(secret, dict):
        raise ConfigurationError(f"secret {secret_id} must be a JSON object: {hint}")
    missing = [key for key in SECRET_KEYS if not isinstance(secret.get(key), str) or not secret[key].strip()]
    if missing:
        raise ConfigurationError(f"secret {secret_id} lacks {', '.join(missing)}: {hint}")
    return {k: v for k, v in secret.items() if isinstance(v, str)}


def close(actual: Any, expected: Any, tol_abs: float, tol_rel: float) -> bool:
    """Numbers within ``abs + rel * |expected|``; containers element-wise; everything else equal."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        if not (math.isfinite(expected) and math.isfinite(actual)):
            return actual == expected
        return abs(actual - expected) <= tol_abs + tol_rel * abs(expected)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return set(expected) == set(actual) and all(
            close(actual[k], expected[k], tol_abs, tol_rel) for k in expected
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            close(a, e, tol_abs, tol_rel) for a, e in zip(actual, expected, strict=True)
        )
    return actual == expected


def latency_ms(values: list[float]) -> dict[str, float | None]:
    """p50/p99 in ms by the project's one percentile, so the report compares with telemetry and bench.

    None without samples: 0 would read as an instant device. Rounded to the microsecond, below
    which an MQTT round trip is noise.
    """

    def rounded(q: float) -> float | None:
        value = percentile(values, q)
        return None if value is None else round(value, 3)

    return {"p50": rounded(50), "p99": rounded(99)}


def check_device(
    thing: str,
    requests: list[dict[str, Any]],
    expected: list[Any],
    answers: Mapping[str, tuple[dict[str, Any], float]],
    *,
    model_version: str,
    tolerance: Mapping[str, float],
) -> dict[str, Any]:
    """One device's verdict from its answers (pure: unit-tested without a broker)."""
    problems: list[str] = []
    round_trips: list[float] = []
    device_ms: list[float] = []
    matched = 0
    versions: set[str] = set()
    for request, want in zip(requests, expected, strict=True):
        rid = request["id"]
        if rid not in answers:
            problems.append(f"{rid}: no answer")
            continue
        answer, rtt = answers[rid]
        round_trips.append(rtt)
        if isinstance(answer.get("latency_ms"), int | float):
            device_ms.append(float(answer["latency_ms"]))
        if not answer.get("ok"):
            problems.append(f"{rid}: error {json.dumps(answer.get('error'))}")
            continue
        version = str((answer.get("model") or {}).get("version"))
        versions.add(version)
        predictions = answer.get("predictions") or []
        if version != model_version:
            problems.append(f"{rid}: model version {version}, expected {model_version}")
        elif len(predictions) != 1 or not close(predictions[0], want, tolerance["abs"], tolerance["rel"]):
            problems.append(f"{rid}: got {json.dumps(predictions)[:200]}, expected {json.dumps(want)[:200]}")
        else:
            matched += 1
    return {
        "thing": thing,
        "passed": not problems,
        "sent": len(requests),
        "answered": len(round_trips),
        "matched": matched,
        "failed": len(requests) - matched,
        "model_versions": sorted(versions),
        "latency_ms": latency_ms(round_trips),
        "device_latency_ms": latency_ms(device_ms),
        "problems": problems[:5],
    }


def golden_requests(golden: dict[str, Any], count: int, tag: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """``count`` single-row requests cycling over the golden rows, with their expected outputs."""
    rows, expected = golden["rows"], golden["expected"]
    if not rows:
        raise VerificationFailed("the golden set has no rows: the export produced nothing to verify with")
    requests = [{"id": f"{tag}-{i}", "rows": [rows[i % len(rows)]]} for i in range(count)]
    return requests, [expected[i % len(rows)] for i in range(count)]


def verify_on_device(
    event: dict[str, Any],
    *,
    s3: Any,
    connect: Callable[[], Any],
    request_response: Callable[..., Mapping[str, tuple[dict[str, Any], float]]],
) -> dict[str, Any]:
    """Sends the golden requests to every device of the deployment and checks every answer."""
    config, deployment = event["config"], event["deployment"]
    golden = json.loads(read_object(s3, event["registry"]["model"]["golden_uri"]))
    options = config["verification"]
    tolerance = options.get("tolerance") or golden.get("tolerance") or {}
    tolerance = {"abs": float(tolerance.get("abs", 1e-5)), "rel": float(tolerance.get("rel", 1e-4))}
    model_version = event["components"]["model"]["version"]
    results = []
    with connect() as client:
        for thing in deployment["devices"]:
            tag = f"verify-{thing}-{uuid.uuid4().hex[:8]}"
            requests, expected = golden_requests(golden, int(options["requests"]), tag)
            answers = request_response(
                client,
                request_topic=f"edge/{thing}/inference/request",
                result_topic=f"edge/{thing}/inference/result",
                requests=requests,
                timeout_s=float(options["timeout_s"]),
            )
            results.append(
                check_device(
                    thing, requests, expected, answers, model_version=model_version, tolerance=tolerance
                )
            )
    failed = [r for r in results if not r["passed"]]
    summary = f"{len(results) - len(failed)} of {len(results)} device(s) verified with model {model_version}"
    if failed:
        reasons = "; ".join(
            f"{r['thing']}: {r['matched']}/{r['sent']} matched ({', '.join(r['problems'][:2])})"
            for r in failed
        )
        raise VerificationFailed(
            f"{summary}. {reasons}. Compare with the component log on the device and golden.json "
            f"({event['registry']['model']['golden_uri']})."
        )
    return {"passed": True, "devices": results, "summary": summary}
