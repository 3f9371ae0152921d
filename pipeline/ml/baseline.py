"""The training baseline in SageMaker Model Monitor's formats: ``statistics.json`` and ``constraints.json``.

Why Model Monitor's formats: people and tools already read them (the field names below are the
documented ones: "Schema for Statistics (statistics.json file)" and "Schema for Constraints
(constraints.json file)" in the SageMaker developer guide), and the drift judgement
(``pipeline.ml.drift``) writes ``constraint_violations.json`` against them as Model Monitor does.

What is ours (docs/monitoring.md): the KLL ``buckets`` of each feature are **fixed edges the
devices count in** (``edge_runtime.inference.monitoring``), so a device's histogram and the
baseline's are compared bucket for bucket. Edges are the deciles of the training values (so every
bucket holds about a tenth of the training data and a shift anywhere moves mass between buckets),
each placed in the gap between two training values; a feature with no more distinct values than
buckets gets one bucket per value instead.
``std_dev`` is the population standard deviation (Deequ's, which Model Monitor's container uses).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from edge_runtime.inference.monitoring import bucket_index
from pipeline.ml.data import load_csv
from pipeline.ml.exceptions import InvalidDataset, MLError

__all__ = [
    "BASELINE_DIR",
    "DEFAULT_BUCKETS",
    "DEFAULT_MONITORING_CONFIG",
    "FORMAT_VERSION",
    "KLL_PARAMETERS",
    "InvalidBaseline",
    "bucket_edges",
    "constraints_of",
    "read_baseline",
    "statistics_of",
    "validate",
    "write_baseline",
]

#: Where the baseline lives inside an exported model directory (beside model.json).
BASELINE_DIR = "baseline"
DEFAULT_BUCKETS = 10
#: Model Monitor's documents carry ``"version": 0``.
FORMAT_VERSION = 0
#: Model Monitor's KLL sketch parameters; with at most ``k`` values the sketch holds them all.
KLL_PARAMETERS = {"c": 0.64, "k": 2048}
#: The documented defaults of constraints.json's ``monitoring_config``.
DEFAULT_MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 0.1,
    "domain_content_threshold": 0.1,
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    },
}
_SCHEMAS = {
    "statistics": "statistics.schema.json",
    "constraints": "constraints.schema.json",
    "constraint_violations": "constraint-violations.schema.json",
    "monitoring_window": "monitoring-window.schema.json",
    "monitoring_report": "monitoring-report.schema.json",
}


class InvalidBaseline(MLError):
    """A statistics.json / constraints.json (or a document judged against them) is unusable."""


def bucket_edges(values: np.ndarray, buckets: int = DEFAULT_BUCKETS) -> list[float]:
    """Fixed edges for one feature's present ``values`` (see the module docstring).

    Every inner edge lies halfway between two neighbouring distinct training values, never on a
    value: the device counts the float32 matrix the model takes, and a value sitting exactly on an
    edge could round to the other side of it. Few distinct values (a flag, a count): one bucket per
    value. Otherwise the gaps at the quantiles 1/b, ..., (b-1)/b (a heavy value may merge two).
    The outer edges are the minimum and maximum; no values at all: one empty bucket [0, 0].
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    distinct = np.unique(np.asarray(values, dtype=np.float64))
    if distinct.size == 0:
        return [0.0, 0.0]
    middles = (distinct[:-1] + distinct[1:]) / 2  # middles[i] is the gap below distinct[i + 1]
    if distinct.size > buckets:
        targets = np.quantile(values, np.linspace(0.0, 1.0, buckets + 1)[1:-1])
        above = np.searchsorted(distinct, targets, side="left")  # first distinct value >= target
        middles = middles[np.unique(above[above > 0]) - 1]
    return [float(distinct[0]), *map(float, middles), float(distinct[-1])]


def _sketch(values: np.ndarray) -> dict:
    """A KLL sketch of the values: exact (one level, every value) when there are at most ``k``.

    Above ``k`` the sorted values are halved (every other one kept, each then standing for twice
    as many) until they fit, the compaction a KLL sketch applies, kept on a single level.
    """
    data = np.sort(values)
    levels = 0
    while data.size > KLL_PARAMETERS["k"]:
        data = data[::2]
        levels += 1
    return {"parameters": dict(KLL_PARAMETERS), "data": [[] for _ in range(levels)] + [data.tolist()]}


def _feature_statistics(name: str, column: pd.Series, buckets: int) -> dict:
    numeric = pd.to_numeric(column, errors="coerce")
    not_numeric = int((numeric.isna() & column.notna()).sum())
    if not_numeric:
        raise InvalidDataset(
            f"feature {name!r} has {not_numeric} non-numeric values; the model takes numbers"
        )
    present = numeric.dropna().to_numpy(dtype=np.float64)
    integral = bool(present.size) and bool(np.all(np.mod(present, 1.0) == 0.0))
    edges = bucket_edges(present, buckets)
    counts = np.bincount(bucket_index(edges, present), minlength=len(edges) - 1) if present.size else None
    kll_buckets = [
        {
            "lower_bound": edges[i],
            "upper_bound": edges[i + 1],
            "count": int(counts[i]) if counts is not None else 0,
        }
        for i in range(len(edges) - 1)
    ]
    numerical: dict = {"common": {"num_present": int(present.size), "num_missing": int(numeric.isna().sum())}}
    if present.size:
        numerical.update(
            mean=float(present.mean()),
            sum=float(present.sum()),
            std_dev=float(present.std()),
            min=float(present.min()),
            max=float(present.max()),
        )
    numerical["distribution"] = {"kll": {"buckets": kll_buckets, "sketch": _sketch(present)}}
    return {
        "name": name,
        "inferred_type": "Integral" if integral else "Fractional",
        "numerical_statistics": numerical,
    }


def statistics_of(df: pd.DataFrame, features: list[str], *, buckets: int = DEFAULT_BUCKETS) -> dict:
    """statistics.json of ``features`` of ``df`` (missing values are NaN / empty cells)."""
    absent = [f for f in features if f not in df.columns]
    if absent:
        raise InvalidDataset(f"the baseline data has no column for features: {', '.join(absent)}")
    if len(df) == 0:
        raise InvalidDataset("the baseline data has no rows")
    return {
        "version": FORMAT_VERSION,
        "dataset": {"item_count": len(df)},
        "features": [_feature_statistics(name, df[name], buckets) for name in features],
    }


def constraints_of(statistics: dict, *, monitoring_config: dict | None = None) -> dict:
    """constraints.json suggested by ``statistics`` (as Model Monitor's baselining job suggests).

    Completeness is the baseline's own share of present values, non-negativity holds when the
    training minimum is >= 0, and ``monitoring_config`` gets the documented defaults (comparison
    threshold 0.1, method Robust) unless given.
    """
    items = statistics["dataset"]["item_count"]
    features = []
    for feature in statistics["features"]:
        numerical = feature["numerical_statistics"]
        present = numerical["common"]["num_present"]
        features.append(
            {
                "name": feature["name"],
                "inferred_type": feature["inferred_type"],
                "completeness": present / items if items else 0.0,
                "num_constraints": {"is_non_negative": bool(present) and numerical["min"] >= 0},
            }
        )
    config = json.loads(json.dumps(monitoring_config or DEFAULT_MONITORING_CONFIG))
    return {"version": FORMAT_VERSION, "features": features, "monitoring_config": config}


def write_baseline(
    data: str | Path | pd.DataFrame,
    features: list[str],
    out_dir: str | Path,
    *,
    buckets: int = DEFAULT_BUCKETS,
) -> tuple[dict, dict]:
    """Write ``out_dir/statistics.json`` and ``out_dir/constraints.json``; return both documents."""
    df = data if isinstance(data, pd.DataFrame) else load_csv(data)
    statistics = statistics_of(df, features, buckets=buckets)
    constraints = constraints_of(statistics)
    validate(statistics, "statistics")
    validate(constraints, "constraints")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in (("statistics.json", statistics), ("constraints.json", constraints)):
        (out / name).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return statistics, constraints


def read_baseline(folder: str | Path) -> tuple[dict, dict]:
    """statistics.json and constraints.json of a baseline folder, validated; ``InvalidBaseline`` if not."""
    docs = []
    for name, kind in (("statistics.json", "statistics"), ("constraints.json", "constraints")):
        path = Path(folder) / name
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise InvalidBaseline(f"{path}: no such file (a baseline folder holds {name})") from exc
        except ValueError as exc:
            raise InvalidBaseline(f"{path}: not valid JSON ({exc})") from exc
        validate(doc, kind, source=str(path))
        docs.append(doc)
    return docs[0], docs[1]


def _schema(kind: str) -> dict:
    return json.loads((Path(__file__).parent / _SCHEMAS[kind]).read_text())


def validate(
    doc: object, kind: str, *, source: str | None = None, error_class: type[MLError] = InvalidBaseline
) -> None:
    """Check ``doc`` against the JSON schema of ``kind`` (statistics, constraints,
    constraint_violations, monitoring_window); raises ``error_class`` naming the first problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema(kind))
    error = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise error_class(f"{source or kind}: not a valid {kind} document at {where}: {error.message}")
