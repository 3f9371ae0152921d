"""MonitorDrift: each device window the IoT rule delivers, judged against the training baseline.

The rule ``SELECT * FROM 'edge/+/monitoring'`` (``infra/monitoring.py``) invokes the function with
one window (``pipeline/ml/monitoring-window.schema.json``) per call. Everything lives in the
deployment's bucket under ``<state prefix>monitoring/`` (docs/monitoring.md has the table):

1. the window is stored as received (``<mv>/windows/<thing>/<window_start>.json``, written once:
   a redelivered window is recognised and not counted twice);
2. ``<mv>/recent/<thing>.json`` keeps that device's last ``judge_windows`` windows that saw rows
   and how many it sent (an idle window is no evidence either way, so it neither clears nor
   raises an alert, and once a report exists it is only counted: nothing is judged again);
3. ``pipeline.ml.drift.judge`` judges every device's recent windows and their union (the fleet);
   each scope's ``constraint_violations.json`` (Model Monitor's format) and ``report.json``
   (``pipeline/ml/monitoring-report.schema.json``) are rewritten, ``latest.json`` points at them;
4. a scope whose violations appear raises one EventBridge event (``lambdas/core/retraining.py``);
   its alert marker ``<mv>/alerts/<scope>.json`` is created with a conditional write, so two
   invocations racing raise one event, and no other until the scope's judgement clears.

A window that cannot be used (not JSON, not a window, other edges, a model version without a
baseline) is listed with its reason in the report's ``rejected`` and the call returns normally:
a bad device never makes the function fail (and Lambda retry it).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import error_code, is_not_found, transient_errors
from lambdas.core.exceptions import ConfigurationError
from lambdas.core.retraining import put_drift_event, retraining_input, snapshot_dataset
from pipeline.config.function_env import Settings
from pipeline.ml.baseline import InvalidBaseline, validate
from pipeline.ml.drift import InvalidWindow, Judgement, parse_window

__all__ = ["REJECTED_KEPT", "Place", "monitor_window"]

#: Rejections a report keeps (newest last).
REJECTED_KEPT = 50
_THING = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
_VERSION = re.compile(r"^[A-Za-z0-9._+-]{1,128}$")
_JSON = "application/json"


@dataclass(frozen=True)
class Place:
    """Keys under ``<state prefix>monitoring/`` in the deployment's bucket."""

    bucket: str
    root: str

    @classmethod
    def of(cls, settings: Settings) -> Place:
        return cls(settings.bucket, f"{settings.state_prefix}monitoring/")

    def key(self, model_version: str, *parts: str) -> str:
        return self.root + "/".join((model_version, *parts))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _get_json(s3: Any, place: Place, key: str) -> Any:
    """The JSON document at ``key``, or None when there is none (or it is not JSON)."""
    with transient_errors(f"s3 get {place.uri(key)}"):
        try:
            body = s3.get_object(Bucket=place.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):  # (AccessDenied is a deployment error: it fails the call)
                return None
            raise
    try:
        return json.loads(body)
    except ValueError:
        return None


def _put_json(s3: Any, place: Place, key: str, doc: Any, *, once: bool = False) -> bool:
    """Write ``doc`` at ``key``; with ``once``, only if the key is new (False when it was not)."""
    extra = {"IfNoneMatch": "*"} if once else {}
    with transient_errors(f"s3 put {place.uri(key)}"):
        try:
            s3.put_object(
                Bucket=place.bucket,
                Key=key,
                Body=json.dumps(doc, indent=2).encode(),
                ContentType=_JSON,
                **extra,
            )
        except ClientError as exc:
            if once and error_code(exc) in {"PreconditionFailed", "ConditionalRequestConflict"}:
                return False
            raise
    return True


def _identify(event: Any) -> tuple[Any, str | None, str | None]:
    """(the window document, its thing, its model version), each None when unusable."""
    doc = event
    if isinstance(doc, str | bytes | bytearray):
        try:
            doc = json.loads(doc)
        except ValueError:
            return event, None, None
    if not isinstance(doc, dict):
        return doc, None, None
    thing = doc.get("thing") if isinstance(doc.get("thing"), str) and _THING.match(doc["thing"]) else None
    version = doc.get("model_version")
    version = version if isinstance(version, str) and _VERSION.match(version) else None
    return doc, thing, version


def _rejection(when: str, thing: str | None, doc: Any, reason: str) -> dict[str, Any]:
    start = doc.get("window_start") if isinstance(doc, dict) else None
    return {
        "received_at": when,
        "thing": thing,
        "window_start": start if isinstance(start, str) else None,
        "reason": reason,
    }


def _remember(s3: Any, place: Place, mv: str, thing: str, window: dict, keep: int) -> None:
    """Store the window once and add it (when it saw rows) to the device's recent windows."""
    key = place.key(mv, "windows", thing, f"{window['window_start']}.json")
    if not _put_json(s3, place, key, window, once=True):
        return  # delivered again (IoT and Lambda deliver at least once): already counted
    recent_key = place.key(mv, "recent", f"{thing}.json")
    recent = _get_json(s3, place, recent_key) or {"thing": thing, "received": 0, "windows": []}
    recent["received"] = int(recent.get("received", 0)) + 1
    if window["row_count"] > 0:
        kept = [w for w in recent.get("windows", []) if w.get("window_start") != window["window_start"]]
        kept.append(window)
        kept.sort(key=lambda w: datetime.fromisoformat(w["window_start"]))
        recent["windows"] = kept[-keep:]
    _put_json(s3, place, recent_key, recent)


def _recent(s3: Any, place: Place, mv: str, keep: int) -> dict[str, dict]:
    """Every device's recent windows (thing -> its ``recent/<thing>.json``)."""
    prefix = place.key(mv, "recent/")
    out: dict[str, dict] = {}
    with transient_errors(f"s3 list {place.uri(prefix)}"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=place.bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    for key in keys:
        doc = _get_json(s3, place, key)
        if isinstance(doc, dict) and isinstance(doc.get("thing"), str):
            doc["windows"] = list(doc.get("windows") or [])[-keep:]
            out[doc["thing"]] = doc
    return out


def _scopes(judgement: Judgement) -> dict[str, Any]:
    """The judgement's scope results by report name: ``fleet`` and ``devices/<thing>``."""
    return {"fleet": judgement.fleet, **{f"devices/{t}": r for t, r in judgement.devices.items()}}


def _write_violations(s3: Any, place: Place, mv: str, scopes: dict[str, Any]) -> dict[str, str]:
    """Each scope's constraint_violations.json (validated against Model Monitor's schema)."""
    files = {}
    for name, result in scopes.items():
        doc = {"violations": list(result.violations)}
        validate(doc, "constraint_violations", error_class=InvalidBaseline)
        key = place.key(mv, name, "constraint_violations.json")
        _put_json(s3, place, key, doc)
        files[name] = place.uri(key)
    return files


@dataclass
class _Alerting:
    """What raising an event needs: clients, where, when, and the model's context.json."""

    s3: Any
    events: Any
    place: Place
    mv: str
    when: str
    context: dict[str, Any]

    def retraining(self, scope: str) -> tuple[dict | None, str | None]:
        """(retraining input, why there is none) for ``scope``'s event: only the fleet's has one."""
        if scope != "fleet":
            return None, "only the fleet's drift starts a retraining"
        doc = retraining_input(self.context, model_version=self.mv, scope=scope, when=self.when)
        if doc is None:
            return None, f"no dataset in {self.place.uri(self.place.key(self.mv, 'context.json'))}"
        newer = (self.context.get("monitoring") or {}).get("retrain_data_uri")
        if newer:
            stamp = re.sub(r"[^0-9TZ]", "", self.when)
            try:
                doc["dataset"]["train"] = snapshot_dataset(
                    self.s3,
                    bucket=self.place.bucket,
                    train=doc["dataset"]["train"],
                    newer=newer,
                    model_version=self.mv,
                    stamp=stamp,
                )
            except ConfigurationError as exc:
                return None, str(exc)
        return doc, None

    def raise_event(self, scope: str, violations: list[dict], report_uri: str) -> dict[str, Any]:
        marker = self.place.key(self.mv, "alerts", f"{scope}.json")
        record: dict[str, Any] = {"raised_at": self.when, "event_id": None, "violations": violations}
        if not _put_json(self.s3, self.place, marker, record, once=True):
            return _get_json(self.s3, self.place, marker) or record  # already raised: no new event
        retraining, why = self.retraining(scope)
        detail = {
            "model_version": self.mv,
            "scope": scope,
            "violations": violations,
            "report_uri": report_uri,
            "retraining_input": retraining,
        }
        if why:
            detail["retraining_skipped"] = why
        try:
            record["event_id"] = put_drift_event(self.events, detail)
        except Exception:
            self.s3.delete_object(Bucket=self.place.bucket, Key=marker)  # the next window retries
            raise
        _put_json(self.s3, self.place, marker, record)
        return record


def _alerts(alerting: _Alerting, scopes: dict[str, Any], report_uri: str) -> dict[str, dict]:
    """Open alerts after this judgement: new ones raised, cleared ones removed."""
    place, s3 = alerting.place, alerting.s3
    prefix = place.key(alerting.mv, "alerts/")
    with transient_errors(f"s3 list {place.uri(prefix)}"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=place.bucket, Prefix=prefix)
        open_ = {o["Key"][len(prefix) : -len(".json")] for p in pages for o in p.get("Contents", [])}
    alerts: dict[str, dict] = {}
    for name, result in scopes.items():
        if result.violations:
            alerts[name] = alerting.raise_event(name, list(result.violations), report_uri)
        elif name in open_:
            with transient_errors("s3 delete alert"):
                s3.delete_object(Bucket=place.bucket, Key=place.key(alerting.mv, "alerts", f"{name}.json"))
    return alerts


def _reject_elsewhere(s3: Any, place: Place, rejection: dict[str, Any]) -> dict[str, Any]:
    """A window no baseline can judge: listed in the newest report (latest.json), if any."""
    latest = _get_json(s3, place, place.root + "latest.json") or {}
    mv = latest.get("model_version")
    report = _get_json(s3, place, place.key(mv, "report.json")) if isinstance(mv, str) else None
    if isinstance(report, dict):
        report["rejected"] = [*report.get("rejected", []), rejection][-REJECTED_KEPT:]
        validate(report, "monitoring_report", error_class=InvalidBaseline)
        _put_json(s3, place, place.key(mv, "report.json"), report)
    return {"accepted": False, "reason": rejection["reason"], "report_model_version": mv}


def monitor_window(
    event: Any, *, settings: Settings, s3: Any, events: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Handle one window (see the module docstring); returns a short summary for the log."""
    place, when = Place.of(settings), _now(now)
    doc, thing, mv = _identify(event)
    if mv is None:
        reason = (
            "not a monitoring window: no usable model_version (pipeline/ml/monitoring-window.schema.json)"
        )
        return _reject_elsewhere(s3, place, _rejection(when, thing, doc, reason))
    statistics = _get_json(s3, place, place.key(mv, "baseline", "statistics.json"))
    constraints = _get_json(s3, place, place.key(mv, "baseline", "constraints.json"))
    if not isinstance(statistics, dict) or not isinstance(constraints, dict):
        reason = f"model version {mv} has no baseline at {place.uri(place.key(mv, 'baseline/'))}"
        return _reject_elsewhere(s3, place, _rejection(when, thing, doc, reason))
    try:
        validate(statistics, "statistics", source=f"baseline of {mv}")
        validate(constraints, "constraints", source=f"baseline of {mv}")
    except InvalidBaseline as exc:
        return _reject_elsewhere(s3, place, _rejection(when, thing, doc, str(exc)))
    context = _get_json(s3, place, place.key(mv, "context.json"))
    context = context if isinstance(context, dict) else {}
    keep = int((context.get("monitoring") or {}).get("judge_windows") or 1)
    rejected = []
    try:
        from edge_runtime.inference.monitoring import Buckets

        window = parse_window(doc, Buckets.from_statistics(statistics))
        _remember(s3, place, mv, window["thing"], window, keep)
    except (InvalidWindow, ValueError) as exc:
        rejected.append(_rejection(when, thing, doc, str(exc)))
    else:
        # an idle window changes no judgement: counted, but nothing rewritten once a report exists
        # (a fleet of idle devices would otherwise rewrite every file every window)
        if window["row_count"] == 0 and _get_json(s3, place, place.key(mv, "report.json")) is not None:
            return {"accepted": True, "model_version": mv, "idle": True}
    return _judge_and_write(s3, events, place, mv, when, statistics, constraints, context, keep, rejected)


def _judge_and_write(
    s3: Any,
    events: Any,
    place: Place,
    mv: str,
    when: str,
    statistics: dict,
    constraints: dict,
    context: dict,
    keep: int,
    rejected: list[dict],
) -> dict[str, Any]:
    """Judge the recent windows, write the violations, alerts, report and latest.json."""
    from pipeline.ml.drift import judge

    recent = _recent(s3, place, mv, keep)
    judgement = judge([w for r in recent.values() for w in r["windows"]], statistics, constraints)
    scopes = _scopes(judgement)
    files = _write_violations(s3, place, mv, scopes)
    report_key = place.key(mv, "report.json")
    alerting = _Alerting(s3, events, place, mv, when, context)
    alerts = _alerts(alerting, scopes, place.uri(report_key))
    previous = _get_json(s3, place, report_key) or {}
    report = {
        "version": 1,
        "model_version": mv,
        "generated_at": when,
        "judge_windows": keep,
        "baseline": {
            "statistics_uri": place.uri(place.key(mv, "baseline", "statistics.json")),
            "constraints_uri": place.uri(place.key(mv, "baseline", "constraints.json")),
        },
        "scopes": {name: asdict(result) for name, result in scopes.items()},
        "files": files,
        "windows": {thing: int(r.get("received", 0)) for thing, r in sorted(recent.items())},
        "rejected": [*previous.get("rejected", []), *rejected][-REJECTED_KEPT:],
        "alerts": alerts,
    }
    validate(report, "monitoring_report", error_class=InvalidBaseline)
    _put_json(s3, place, report_key, report)
    _put_json(s3, place, place.root + "latest.json", {"model_version": mv, "updated_at": when})
    return {
        "accepted": not rejected,
        "model_version": mv,
        "reason": rejected[0]["reason"] if rejected else None,
        "violations": {name: len(r.violations) for name, r in scopes.items() if r.violations},
        "alerts": sorted(alerts),
        "report_uri": place.uri(report_key),
    }
