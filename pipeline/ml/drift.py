"""The drift judgement: devices' monitoring windows against the training baseline, per device and fleet.

Devices publish windows (pipeline/ml/monitoring-window.schema.json) counted on the baseline's
bucket edges; this module checks them, merges them per device and fleet-wide (counts add up, so
merging is exact), and evaluates ``constraints.json`` as Model Monitor does, writing
``constraint_violations.json`` in its documented format ("Schema for Violations"):

* ``baseline_drift_check``: the distance between the baseline and the device distribution exceeds
  ``distribution_constraints.comparison_threshold`` (default 0.1). The distance is Model Monitor's
  L-infinity distance ``linf_simple``, the largest absolute difference between the two cumulative
  distributions, here evaluated on the bucket edges of the normalized histograms. With
  ``comparison_method`` ``Robust`` (the documented default, meant for few samples), the distance
  compared is ``linf_robust`` as Deequ (Model Monitor's engine) computes it:
  ``max(0, linf_simple - 1.8 * sqrt((n + m) / (n m)))`` for the two sample sizes, the two-sample
  Kolmogorov-Smirnov allowance for sampling noise, so a small window's noise is not drift.
* ``completeness_check``: the share of non-null values falls below the feature's ``completeness``
  by more than binomial sampling noise (one-sided, 1%; with completeness 1.0 any null counts).
* ``data_type_check``: the share of non-null values that are not numbers exceeds
  ``datatype_check_threshold`` (default 0.1).

Missing/extra column checks cannot arise: a window names the exact features and edges it was
counted on (``edges_digest``), and windows counted on other edges are rejected, not compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from edge_runtime.inference.monitoring import Buckets
from pipeline.ml.baseline import InvalidBaseline, validate
from pipeline.ml.exceptions import MLError

__all__ = [
    "KS_COEFFICIENT",
    "Aggregate",
    "FeatureResult",
    "InvalidWindow",
    "Judgement",
    "ScopeResult",
    "evaluate",
    "judge",
    "linf_distance",
    "merge",
    "parse_window",
    "violations_document",
    "write_violations",
]

#: c(alpha) of linf_robust's two-sample Kolmogorov-Smirnov allowance: Deequ's default (1.8, alpha
#: about 0.3%), which Model Monitor's container computes its Robust distance with.
KS_COEFFICIENT = 1.8
#: One-sided 1% quantile of the standard normal, for the completeness shortfall.
_Z_ONE_SIDED_1PCT = 2.3263


class InvalidWindow(MLError):
    """A monitoring window is malformed or was counted on other bucket edges."""


@dataclass
class Aggregate:
    """Windows merged: per feature the summed counts, missing and non-numeric values, moments."""

    scope: str
    features: list[str]
    counts: list[np.ndarray]
    missing: np.ndarray
    non_numeric: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    windows: int = 0
    rows: int = 0
    start: str | None = None
    end: str | None = None
    predictions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureResult:
    """One feature of one scope: what was compared and what was found (for tables and charts)."""

    name: str
    present: int
    linf_simple: float | None
    distance: float | None  # the one compared: linf_robust with Robust, else linf_simple
    threshold: float
    completeness: float | None
    non_numeric_share: float | None
    mean: float | None
    baseline_fractions: list[float]
    observed_fractions: list[float]


@dataclass(frozen=True)
class ScopeResult:
    """The judgement of one device (``scope`` = its thing name) or of the fleet."""

    scope: str
    windows: int
    rows: int
    start: str | None
    end: str | None
    features: list[FeatureResult]
    violations: list[dict]
    predictions: dict


@dataclass(frozen=True)
class Judgement:
    """Per device and fleet-wide results, and the windows that could not be used (with why)."""

    devices: dict[str, ScopeResult]
    fleet: ScopeResult
    rejected: list[str]

    def as_dict(self) -> dict:
        """Plain JSON-ready data (for a report file, ``--json`` output and the console's charts)."""
        return {
            "fleet": asdict(self.fleet),
            "devices": {thing: asdict(result) for thing, result in self.devices.items()},
            "rejected": list(self.rejected),
        }


def parse_window(doc: object, buckets: Buckets) -> dict:
    """``doc`` (a dict or JSON text) checked against the schema and the baseline's edges."""
    if isinstance(doc, str | bytes | bytearray):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise InvalidWindow(f"monitoring window: not valid JSON ({exc})") from exc
    validate(doc, "monitoring_window", source="monitoring window", error_class=InvalidWindow)
    thing = doc["thing"]
    if doc["edges_digest"] != buckets.digest:
        raise InvalidWindow(
            f"monitoring window of {thing} (model {doc['model_version']}): counted on other bucket "
            f"edges ({doc['edges_digest'][:19]}...) than the baseline's ({buckets.digest[:19]}...)"
        )
    names = [f["name"] for f in doc["features"]]
    if names != buckets.features:
        raise InvalidWindow(f"monitoring window of {thing}: features {names} are not the baseline's")
    for feature, size in zip(doc["features"], buckets.sizes, strict=True):
        if len(feature["counts"]) != size:
            raise InvalidWindow(
                f"monitoring window of {thing}: feature {feature['name']!r} has "
                f"{len(feature['counts'])} counts, the baseline has {size} buckets"
            )
    if _when(doc["window_end"]) < _when(doc["window_start"]):
        raise InvalidWindow(f"monitoring window of {thing}: window_end is before window_start")
    return doc


def _when(stamp: str) -> datetime:
    """A window timestamp as a datetime (the strings' precision varies, so they do not sort)."""
    return datetime.fromisoformat(stamp)


def _empty(scope: str, buckets: Buckets) -> Aggregate:
    f = len(buckets.features)
    return Aggregate(
        scope=scope,
        features=list(buckets.features),
        counts=[np.zeros(int(s), dtype=np.int64) for s in buckets.sizes],
        missing=np.zeros(f, dtype=np.int64),
        non_numeric=np.zeros(f, dtype=np.int64),
        sums=np.zeros(f),
        squares=np.zeros(f),
    )


def merge(windows: Iterable[dict], buckets: Buckets, scope: str) -> Aggregate:
    """Add up parsed windows (``parse_window``) into one aggregate named ``scope``."""
    agg = _empty(scope, buckets)
    for w in windows:
        agg.windows += 1
        agg.rows += w["row_count"]
        agg.start = min(agg.start or w["window_start"], w["window_start"], key=_when)
        agg.end = max(agg.end or w["window_end"], w["window_end"], key=_when)
        for j, feature in enumerate(w["features"]):
            agg.counts[j] += np.asarray(feature["counts"], dtype=np.int64)
            agg.missing[j] += feature["missing"]
            agg.non_numeric[j] += feature.get("non_numeric", 0)
            agg.sums[j] += feature.get("sum", 0.0)
            agg.squares[j] += feature.get("sum_squares", 0.0)
        _merge_predictions(agg.predictions, w["predictions"])
    return agg


def _merge_predictions(into: dict, p: dict) -> None:
    for key in ("count", "sum", "sum_squares"):
        into[key] = into.get(key, 0) + p.get(key, 0)
    for key, pick in (("min", min), ("max", max)):
        if key in p:
            into[key] = pick(into[key], p[key]) if key in into else p[key]
    for label, n in p.get("class_counts", {}).items():
        classes = into.setdefault("class_counts", {})
        classes[label] = classes.get(label, 0) + n


def linf_distance(baseline_counts: np.ndarray, observed_counts: np.ndarray) -> float:
    """Largest absolute difference between the cumulative normalized histograms (``linf_simple``)."""
    b = np.asarray(baseline_counts, dtype=np.float64)
    o = np.asarray(observed_counts, dtype=np.float64)
    if b.sum() <= 0 or o.sum() <= 0:
        raise ValueError("both histograms need at least one count")
    return float(np.max(np.abs(np.cumsum(b / b.sum()) - np.cumsum(o / o.sum()))))


def _fractions(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) for c in counts] if total else [0.0 for _ in counts]


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _drift(name: str, base: np.ndarray, seen: np.ndarray, dist: dict) -> tuple[float, float, dict | None]:
    """(linf_simple, distance compared with the threshold, violation or None) of one feature."""
    simple = linf_distance(base, seen)
    distance = simple
    if dist.get("comparison_method", "Robust") == "Robust":
        n, m = float(base.sum()), float(seen.sum())
        distance = max(0.0, simple - KS_COEFFICIENT * math.sqrt((n + m) / (n * m)))
    threshold = float(dist.get("comparison_threshold", 0.1))
    if dist.get("perform_comparison", "Enabled") != "Enabled" or distance <= threshold:
        return simple, distance, None
    return (
        simple,
        distance,
        {
            "feature_name": name,
            "constraint_check_type": "baseline_drift_check",
            "description": f"Baseline drift distance: {distance:.4g} exceeds threshold: {threshold:.4g}",
        },
    )


def _completeness(name: str, expected: float, nonnull: int, total: int) -> tuple[float, dict | None]:
    observed = nonnull / total
    margin = _Z_ONE_SIDED_1PCT * math.sqrt(expected * (1 - expected) / total)
    if observed >= expected - margin:
        return observed, None
    return observed, {
        "feature_name": name,
        "constraint_check_type": "completeness_check",
        "description": (
            f"Data completeness requirement is not met. Expected: {_pct(expected)}. "
            f"Observed: Only {_pct(observed)} of data is non-null ({total - nonnull} of {total} missing)."
        ),
    }


def _data_type(name: str, kind: str, threshold: float, present: int, other: int) -> tuple[float, dict | None]:
    share = other / (present + other)
    if share <= threshold:
        return share, None
    return share, {
        "feature_name": name,
        "constraint_check_type": "data_type_check",
        "description": (
            f"Data type match requirement is not met. Expected data type: {kind}, Expected match: "
            f"{_pct(1 - threshold)}. Observed: Only {_pct(1 - share)} of data is {kind} "
            f"({other} of {present + other} non-null values are not numbers)."
        ),
    }


def evaluate(agg: Aggregate, statistics: dict, constraints: dict) -> ScopeResult:
    """The checks of the module docstring for one aggregate, in baseline feature order."""
    config = constraints.get("monitoring_config", {})
    dist = config.get("distribution_constraints", {})
    enabled = config.get("evaluate_constraints", "Enabled") == "Enabled"
    type_threshold = float(config.get("datatype_check_threshold", 0.1))
    by_name = {f["name"]: f for f in constraints["features"]}
    stats = {f["name"]: f for f in statistics["features"]}
    results, violations = [], []
    for j, name in enumerate(agg.features):
        base = np.asarray(
            [b["count"] for b in stats[name]["numerical_statistics"]["distribution"]["kll"]["buckets"]]
        )
        seen = agg.counts[j]
        present, other = int(seen.sum()), int(agg.non_numeric[j])
        total = present + other + int(agg.missing[j])
        found: list[dict | None] = []
        simple = distance = completeness = share = None
        if present and base.sum():
            simple, distance, v = _drift(name, base, seen, dist)
            found.append(v)
        if total and name in by_name:
            completeness, v = _completeness(
                name, float(by_name[name]["completeness"]), present + other, total
            )
            found.append(v)
        if present + other:
            kind = by_name.get(name, stats[name])["inferred_type"]
            share, v = _data_type(name, kind, type_threshold, present, other)
            found.append(v)
        if enabled:
            violations += [v for v in found if v]
        results.append(
            FeatureResult(
                name=name,
                present=present,
                linf_simple=simple,
                distance=distance,
                threshold=float(dist.get("comparison_threshold", 0.1)),
                completeness=completeness,
                non_numeric_share=share,
                mean=float(agg.sums[j] / present) if present else None,
                baseline_fractions=_fractions(base),
                observed_fractions=_fractions(seen),
            )
        )
    validate(violations_document(violations), "constraint_violations")
    return ScopeResult(
        scope=agg.scope,
        windows=agg.windows,
        rows=agg.rows,
        start=agg.start,
        end=agg.end,
        features=results,
        violations=violations,
        predictions=dict(agg.predictions),
    )


def judge(windows: Iterable[object], statistics: dict, constraints: dict) -> Judgement:
    """Parse every window, merge per device and fleet-wide, evaluate each scope.

    A window that cannot be used (malformed, other edges) is left out and listed in ``rejected``
    with the reason, so one stale device does not stop the fleet's judgement; an unusable
    baseline raises ``InvalidBaseline``.
    """
    validate(statistics, "statistics", source="baseline statistics")
    validate(constraints, "constraints", source="baseline constraints")
    try:
        buckets = Buckets.from_statistics(statistics)
    except ValueError as exc:
        raise InvalidBaseline(f"baseline statistics: {exc}") from exc
    per_thing: dict[str, list[dict]] = {}
    rejected = []
    for doc in windows:
        try:
            w = parse_window(doc, buckets)
        except InvalidWindow as exc:
            rejected.append(str(exc))
            continue
        per_thing.setdefault(w["thing"], []).append(w)
    devices = {
        thing: evaluate(merge(ws, buckets, thing), statistics, constraints)
        for thing, ws in sorted(per_thing.items())
    }
    every = [w for ws in per_thing.values() for w in ws]
    fleet = evaluate(merge(every, buckets, "fleet"), statistics, constraints)
    return Judgement(devices=devices, fleet=fleet, rejected=rejected)


def violations_document(violations: list[dict]) -> dict:
    """constraint_violations.json's document for a list of violations."""
    return {"violations": list(violations)}


def write_violations(path: str | Path, result: ScopeResult) -> Path:
    """Write ``result``'s constraint_violations.json (a folder gets the file name appended)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / "constraint_violations.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(violations_document(result.violations), indent=2) + "\n")
    return path
