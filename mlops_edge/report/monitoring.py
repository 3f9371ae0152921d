"""Reading the cloud's drift report (issue 16) for people: `mlops-edge monitor` and the console.

The monitoring function writes, in the pipeline's bucket under ``<state prefix>monitoring/``
(docs/monitoring.md): ``latest.json`` (which model version was judged last), and per model
version ``report.json`` (per scope, the fleet and each device, ``pipeline.ml.drift``'s judgement)
and ``baseline/statistics.json`` + ``constraints.json`` (the training baseline it was judged
against). This module reads them with an injected S3 client and builds one plain record per scope
and feature; the terminal table, ``--output json`` and the console's charts are renderings of
those records, so they cannot disagree.

Why a module of its own on this floor: the command and the console both need it, and the console
may import only ``report`` and ``pipeline`` (docs/architecture.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FLEET",
    "Loaded",
    "MonitoringError",
    "Where",
    "load",
    "monitoring_document",
    "versions",
]

FLEET = "fleet"
#: Said when nothing was judged yet: what produces the files and how often.
PRODUCED_BY = (
    "the cloud's monitoring function writes it once a device has published a window to "
    "edge/<thing>/monitoring; a device publishes one window every MonitoringWindowSeconds of its "
    "inference component (300 s unless the execution input's monitoring.window_s says otherwise)"
)


class MonitoringError(Exception):
    """Something a person can act on (nothing judged yet, an unknown device or feature, ...)."""


@dataclass(frozen=True)
class Where:
    """The pipeline's bucket and its state prefix (``Settings.state_prefix``, ``state/`` by default)."""

    bucket: str
    state_prefix: str = "state/"

    def key(self, *parts: str) -> str:
        prefix = self.state_prefix if self.state_prefix.endswith("/") else self.state_prefix + "/"
        return prefix + "monitoring/" + "/".join(parts)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(*parts)}"


@dataclass(frozen=True)
class Loaded:
    """One model version's report, with the baseline it was judged against (when readable)."""

    where: Where
    model_version: str
    report: dict[str, Any]
    statistics: dict[str, Any] | None
    constraints: dict[str, Any] | None


def _read(s3: Any, where: Where, *parts: str) -> Any | None:
    """The JSON document at that key; None when there is no such object (other errors propagate)."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=where.bucket, Key=where.key(*parts))["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        if code == "NoSuchBucket":
            raise MonitoringError(
                f"bucket {where.bucket} does not exist: pass the pipeline's artifact bucket (--bucket)"
            ) from exc
        raise
    try:
        return json.loads(body)
    except ValueError as exc:
        raise MonitoringError(f"{where.uri(*parts)} is not valid JSON ({exc})") from exc


def versions(s3: Any, where: Where) -> list[str]:
    """The model versions with a folder under ``monitoring/``, oldest first (by semver-ish key)."""
    prefix = where.key("")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=where.bucket, Prefix=prefix, Delimiter="/"
    ):
        found += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
    return sorted(found, key=_version_key)


def _version_key(version: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.replace("-", ".").split("."))


def _read_uri(s3: Any, where: Where, uri: object, default: tuple[str, ...]) -> Any | None:
    """A baseline file by the report's s3:// URI (in ``where``'s bucket), else its usual key."""
    if isinstance(uri, str) and uri.startswith(f"s3://{where.bucket}/"):
        key = uri.removeprefix(f"s3://{where.bucket}/")
        root = where.key("")
        if key.startswith(root):
            return _read(s3, where, *key[len(root) :].split("/"))
    return _read(s3, where, *default)


def load(s3: Any, where: Where, model_version: str | None = None) -> Loaded:
    """``model_version``'s report (default: the one ``latest.json`` names) and its baseline.

    The report is checked against pipeline/ml/monitoring-report.schema.json, the schema its
    writer validates with, so a file that is not one is said so, not half shown.
    """
    from pipeline.ml.baseline import InvalidBaseline, validate

    if model_version is None:
        latest = _read(s3, where, "latest.json")
        if latest is None:
            raise MonitoringError(
                f"no monitoring data yet ({where.uri('latest.json')} is missing): {PRODUCED_BY}"
            )
        if not isinstance(latest, dict) or not isinstance(latest.get("model_version"), str):
            raise MonitoringError(f"{where.uri('latest.json')} names no model_version")
        model_version = latest["model_version"]
    report = _read(s3, where, model_version, "report.json")
    if report is None:
        known = [v for v in versions(s3, where) if v != model_version]
        others = f"; versions with monitoring data: {', '.join(known)}" if known else ""
        raise MonitoringError(
            f"no drift report for model version {model_version} yet "
            f"({where.uri(model_version, 'report.json')} is missing): {PRODUCED_BY}{others}"
        )
    try:
        validate(report, "monitoring_report", source=where.uri(model_version, "report.json"))
    except InvalidBaseline as exc:
        raise MonitoringError(str(exc)) from exc
    baseline = report["baseline"]
    statistics = _read_uri(
        s3, where, baseline.get("statistics_uri"), (model_version, "baseline", "statistics.json")
    )
    constraints = _read_uri(
        s3, where, baseline.get("constraints_uri"), (model_version, "baseline", "constraints.json")
    )
    return Loaded(
        where=where,
        model_version=model_version,
        report=report,
        statistics=statistics if isinstance(statistics, dict) else None,
        constraints=constraints if isinstance(constraints, dict) else None,
    )


def scopes(report: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(scope name, thing or None, judgement): the fleet first, then each device by name."""
    found = [
        (name, None if name == FLEET else name.removeprefix("devices/"), scope)
        for name, scope in report["scopes"].items()
    ]
    if not found:
        raise MonitoringError("the report judges no scope yet (no window with rows)")
    return sorted(found, key=lambda item: (item[1] is not None, item[1] or ""))


def _ms(stamp: Any) -> Any:
    """An ISO-8601 time as the CLI's JSON gives every time: UTC to the millisecond (docs/cli-json.md)."""
    from datetime import UTC, datetime

    if not isinstance(stamp, str):
        return stamp
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _baseline(loaded: Loaded) -> dict[str, dict[str, Any]]:
    """Per feature: training mean, edges and expected completeness (what the baseline files say)."""
    out: dict[str, dict[str, Any]] = {}
    for f in (loaded.statistics or {}).get("features", []):
        numbers = f.get("numerical_statistics") or {}
        buckets = ((numbers.get("distribution") or {}).get("kll") or {}).get("buckets") or []
        edges = [buckets[0]["lower_bound"], *[b["upper_bound"] for b in buckets]] if buckets else None
        out[f["name"]] = {"training_mean": numbers.get("mean"), "edges": edges}
    for f in (loaded.constraints or {}).get("features", []):
        out.setdefault(f["name"], {})["expected_completeness"] = f.get("completeness")
    return out


def _feature(f: dict[str, Any], checks: list[str], base: dict[str, Any]) -> dict[str, Any]:
    return {
        "feature": f["name"],
        "present": f.get("present"),
        "distance": f.get("distance"),
        "linf_simple": f.get("linf_simple"),
        "threshold": f.get("threshold"),
        "drift": "baseline_drift_check" in checks,
        "checks": checks,
        "completeness": f.get("completeness"),
        "expected_completeness": base.get("expected_completeness"),
        "non_numeric_share": f.get("non_numeric_share"),
        "mean": f.get("mean"),
        "training_mean": base.get("training_mean"),
        "edges": base.get("edges"),
        "training_fractions": f.get("baseline_fractions") or [],
        "observed_fractions": f.get("observed_fractions") or [],
    }


def _scope_record(
    name: str, thing: str | None, scope: dict[str, Any], baseline: dict, feature: str | None, alert: Any
) -> dict:
    violations = [v for v in scope.get("violations") or [] if isinstance(v, dict)]
    features = [
        _feature(
            f,
            [v["constraint_check_type"] for v in violations if v.get("feature_name") == f["name"]],
            baseline.get(f["name"], {}),
        )
        for f in scope["features"]
        if feature is None or f.get("name") == feature
    ]
    return {
        "scope": name,
        "thing": thing,
        "windows": scope.get("windows"),
        "rows": scope.get("rows"),
        "start": _ms(scope.get("start")),
        "end": _ms(scope.get("end")),
        "violations": [v for v in violations if feature is None or v.get("feature_name") == feature],
        "alert": {"raised_at": _ms(alert.get("raised_at")), "event_id": alert.get("event_id")}
        if isinstance(alert, dict)
        else None,
        "features": features,
    }


def monitoring_document(
    loaded: Loaded, *, device: str | None = None, feature: str | None = None
) -> dict[str, Any]:
    """The records `monitor` prints and the console draws (fields in docs/cli-json.md).

    ``device`` keeps that device's scope only, ``feature`` that feature only; either one unknown
    is a :class:`MonitoringError` naming the ones there are.
    """
    found = scopes(loaded.report)
    things = [thing for _, thing, _ in found if thing is not None]
    if device is not None and device not in things:
        known = ", ".join(things) or "none yet"
        raise MonitoringError(
            f"no monitoring windows from device {device!r} for model {loaded.model_version} "
            f"(devices with windows: {known})"
        )
    names = [f.get("name") for f in found[0][2]["features"]]
    if feature is not None and feature not in names:
        raise MonitoringError(f"feature {feature!r} is not one of the model's: {', '.join(map(str, names))}")
    baseline = _baseline(loaded)
    report = loaded.report
    alerts = report.get("alerts") or {}
    received = report.get("windows") or {}
    records = [
        {
            **_scope_record(name, thing, scope, baseline, feature, alerts.get(name)),
            # every window stored for this model version (judged: the last judge_windows with rows)
            "received": sum(received.values()) if thing is None else received.get(thing, 0),
        }
        for name, thing, scope in found
        if device is None or thing == device
    ]
    return {
        "model_version": loaded.model_version,
        "generated_at": _ms(report["generated_at"]),
        "judge_windows": report["judge_windows"],
        "report_uri": loaded.where.uri(loaded.model_version, "report.json"),
        "rejected": [
            {**r, "received_at": _ms(r["received_at"]), "window_start": _ms(r.get("window_start"))}
            for r in report["rejected"]
            if device is None or r.get("thing") == device
        ],
        "scopes": records,
    }
