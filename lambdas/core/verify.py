"""VerifyOnDevice: golden requests over MQTT to every device, answers checked before anything is promoted.

A deployment that "succeeded" only says the components started. This proves inference works: each
device gets the golden rows (correlation id per request) on ``edge/<thing>/inference/request`` and
must answer on ``edge/<thing>/inference/result`` with the expected outputs (the ONNX model's own,
within tolerance) and the deployed model version. Latency p50/p99 is reported per device.

Devices are verified concurrently over one MQTT connection: every device's requests go out
round-robin (at AWS IoT's publish rate per connection), answers come back through one wildcard
subscription, and one overall timeout bounds the wait, so a silent device is named ("no answer")
instead of consuming the function's time. The devices are those the deployment check saw succeed
(its S3 detail); every device's result goes to S3 (``pipeline.execution_detail``) and the state
document gets counts, the detail's URI and, on failure, at most ``MAX_NAMED`` devices by name.

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
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_runtime.inference.stats import percentile
from lambdas.core.aws import read_object, transient_errors
from lambdas.core.detail import named, read_detail, write_detail
from lambdas.core.exceptions import ConfigurationError, VerificationFailed
from pipeline.config.rollout import stage_of
from pipeline.execution_detail import VERIFICATION, detail_uri

ENV = "MLOPS_EDGE_MQTT_"
#: One subscription for every device's answers (AWS IoT allows 50 subscriptions per connection).
RESULT_FILTER = "edge/+/inference/result"
#: Time kept back from the function's remaining time for writing the results and returning.
RESERVE_S = 10.0


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
    waited_s: float | None = None,
) -> dict[str, Any]:
    """One device's verdict from its answers (pure: unit-tested without a broker).

    A device that answered nothing gets one problem, ``no answer`` with how long it was waited
    for; missing answers of a device that did answer are counted, not listed one by one.
    """
    problems: list[str] = []
    round_trips: list[float] = []
    device_ms: list[float] = []
    matched = 0
    missing = 0
    versions: set[str] = set()
    for request, want in zip(requests, expected, strict=True):
        rid = request["id"]
        if rid not in answers:
            missing += 1
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
    within = f" within {waited_s:g} s" if waited_s is not None else ""
    if missing and missing == len(requests):
        problems.insert(0, f"no answer{within} to any of {len(requests)} request(s) (offline?)")
    elif missing:
        problems.insert(0, f"no answer{within} to {missing} of {len(requests)} request(s)")
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


def devices_to_verify(s3: Any, event: Mapping[str, Any]) -> list[str]:
    """The devices the deployment check saw succeed (its S3 detail): all of them, or there would
    be no verification."""
    uri = (event.get("deployment_status") or {}).get("devices_uri")
    status = read_detail(s3, uri)
    if status is None:
        raise VerificationFailed(
            f"the deployment check's per-device status {uri or '(no URI in $.deployment_status)'} "
            "cannot be read, so there is no list of devices to verify"
        )
    things = [d["thing"] for d in status.get("devices", []) if d.get("status") == "SUCCEEDED"]
    if not things:
        raise VerificationFailed(f"no device succeeded in the deployment check ({uri}): nothing to verify")
    return things


def verify_on_device(
    event: dict[str, Any],
    *,
    s3: Any,
    connect: Callable[[], Any],
    exchange: Callable[..., Mapping[str, tuple[dict[str, Any], float]]],
    time_budget_s: float | None = None,
    publish_per_s: float | None = None,
) -> dict[str, Any]:
    """Sends the golden requests to every device at once and checks every answer.

    ``exchange`` is ``pipeline.mqtt.request_response_many``'s shape; ``time_budget_s`` is what the
    function may spend (its remaining time), ``publish_per_s`` the connection's publish rate.
    """
    from pipeline.mqtt import AWS_IOT_PUBLISH_PER_S, Exchange

    config = event["config"]
    golden_uri = event["registry"]["model"]["golden_uri"]
    golden = json.loads(read_object(s3, golden_uri))
    options = config["verification"]
    tolerance = options.get("tolerance") or golden.get("tolerance") or {}
    tolerance = {"abs": float(tolerance.get("abs", 1e-5)), "rel": float(tolerance.get("rel", 1e-4))}
    model_version = event["components"]["model"]["version"]
    things = devices_to_verify(s3, event)
    count, timeout_s = int(options["requests"]), float(options["timeout_s"])
    rate = publish_per_s or AWS_IOT_PUBLISH_PER_S
    deadline = _deadline(len(things) * count, rate, timeout_s, time_budget_s)
    run = uuid.uuid4().hex[:8]
    plan = {thing: golden_requests(golden, count, f"verify-{thing}-{run}") for thing in things}
    started = time.monotonic()
    with connect() as client:
        answers = exchange(
            client,
            [
                Exchange(f"edge/{thing}/inference/request", f"edge/{thing}/inference/result", requests)
                for thing, (requests, _) in plan.items()
            ],
            subscriptions=[RESULT_FILTER],
            timeout_s=timeout_s,
            max_publish_per_s=rate,
            deadline=deadline,
        )
    waited_s = round(time.monotonic() - started, 1)
    results = [
        check_device(
            thing,
            requests,
            expected,
            answers,
            model_version=model_version,
            tolerance=tolerance,
            waited_s=waited_s,
        )
        for thing, (requests, expected) in plan.items()
    ]
    _, stage, _ = stage_of(config, (event.get("rollout") or {}).get("index"))
    return _verdict(
        s3,
        config,
        results,
        model_version=model_version,
        golden_uri=golden_uri,
        tolerated=float(stage["failure_threshold_percent"]) > 0,
    )


def _deadline(requests: int, rate: float, timeout_s: float, budget_s: float | None) -> float | None:
    """When waiting must stop; a plan that cannot fit the function's time fails before sending."""
    if budget_s is None:
        return None
    usable = budget_s - RESERVE_S
    needed = requests / rate + timeout_s
    if needed > usable:
        raise ConfigurationError(
            f"verifying takes about {needed:.0f} s ({requests} requests at {rate:g} publishes/s, then "
            f"verification.timeout_s {timeout_s:g} s), more than the {max(usable, 0):.0f} s this function "
            "has left: lower verification.requests or verification.timeout_s, or raise VerifyOnDevice's "
            "timeout"
        )
    return time.monotonic() + usable


def _verdict(
    s3: Any,
    config: Mapping[str, Any],
    results: Sequence[dict[str, Any]],
    *,
    model_version: str,
    golden_uri: str,
    tolerated: bool = False,
) -> dict[str, Any]:
    """Writes every device's result to S3; returns the counts, or raises naming failed devices.

    ``tolerated``: the rollout stage accepts a share of failed devices, so failures are counted
    and returned (``passed`` false) for EvaluateStage to weigh against the threshold."""
    failed = [r for r in results if not r["passed"]]
    counts = {
        "targeted": len(results),
        "verified": len(results) - len(failed),
        "failed": len(failed),
        "requests_sent": sum(r["sent"] for r in results),
        "requests_matched": sum(r["matched"] for r in results),
    }
    summary = f"{counts['verified']} of {len(results)} device(s) verified with model {model_version}"
    uri = detail_uri(config, VERIFICATION)
    write_detail(
        s3,
        config,
        VERIFICATION,
        {"passed": not failed, "summary": summary, "model_version": model_version, "devices": results},
    )
    if failed and not tolerated:
        reasons = [
            f"{r['thing']}: {r['matched']}/{r['sent']} matched ({', '.join(r['problems'][:2])})"
            for r in failed
        ]
        raise VerificationFailed(
            f"{summary}. {named(reasons, uri=uri)}. Compare with the component log on the device and "
            f"golden.json ({golden_uri})."
        )
    return {"passed": not failed, "summary": summary, "counts": counts, "devices_uri": uri}
