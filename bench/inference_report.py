"""bench/inference.py's table: the accelerated and standard engine beside XGBoost, per task."""

from __future__ import annotations

from typing import Any


def report(results: dict[str, dict], cpu: int | None, doc: dict[str, Any]) -> None:
    """Print the figures of every model as one table, then the verdict on issue 15's goals."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"edge engine (accelerated / standard) vs xgboost native (pinned to cpu {cpu})")
    table.add_column("figure")
    for name in results:
        table.add_column(name, justify="right")

    def row(label: str, fmt) -> None:
        table.add_row(label, *[fmt(r) for r in results.values()])

    def lat(r: dict, which: str) -> str:
        s = r["single_row"][which]
        return f"{s['p50_us']:.1f} / {s['p99_us']:.1f}"

    row("trees / features", lambda r: f"{r['trees']} / {r['features']}")
    row("engine that ran by default", lambda r: r["engine"])
    row("accelerated row p50 / p99 µs", lambda r: lat(r, "accelerated"))
    row("standard row p50 / p99 µs", lambda r: lat(r, "standard"))
    row("xgboost row p50 / p99 µs", lambda r: lat(r, "xgboost"))
    row("ratio xgboost / accelerated (p50)", lambda r: f"{r['ratio']:.1f}×")
    row("ratio xgboost / standard (p50)", lambda r: f"{r['standard_ratio']:.1f}×")
    row("accelerated: one row repeated p50 µs", lambda r: f"{r['engine_same_row_repeated']['p50_us']:.1f}")
    row("accelerated: JSON record p50 µs", lambda r: f"{r['engine_single_record_json']['p50_us']:.1f}")
    row("accelerated: row + lock p50 µs", lambda r: f"{r['engine_single_row_with_lock']['p50_us']:.1f}")
    for size in ("1", "32", "1024"):
        row(
            f"rows/s batch {size}: accel / std / xgboost",
            lambda r, s=size: " / ".join(
                f"{r['batch'][s][k + '_rows_per_s']:,.0f}" for k in ("accelerated", "standard", "xgboost")
            ),
        )
    row("batch 1024: accelerated / xgboost", lambda r: f"{r['batch1024_ratio']:.2f}×")
    row(
        "rows/s batch 1024, arrays out: accel / std",
        lambda r: " / ".join(
            f"{r['batch']['1024'].get(k + '_arrays_rows_per_s', 0):,.0f}" for k in ("accelerated", "standard")
        ),
    )
    row("batch 1024 arrays out: accelerated / xgboost", lambda r: f"{r['batch1024_arrays_ratio']:.2f}×")
    row(
        "rows/s batch 1024: accelerated, JSON rows",
        lambda r: f"{r['batch']['1024']['accelerated_json_rows_per_s']:,.0f}",
    )
    row(
        "load ms: accel / std / xgboost",
        lambda r: " / ".join(f"{r['load_ms'][k]:.1f}" for k in ("accelerated", "standard", "xgboost")),
    )
    row(
        "size KiB: model.onnx / model.accel.onnx",
        lambda r: " / ".join(
            f"{r['size_bytes'].get(p, 0) / 1024:.0f}" for p in ("onnx/model.onnx", "onnx/model.accel.onnx")
        ),
    )
    row("parity max abs: standard / accelerated", lambda r: _parity(r))
    console.print(table)
    for name, goals in doc["goals"].items():
        r = results[name]
        missed = [k for k, ok in goals.items() if not ok]
        console.print(
            f"{name}: accelerated p50 {r['single_row']['accelerated']['p50_us']:.1f} µs "
            f"(goal ≤ {doc['targets']['engine_p50_us_max']:g}), {r['ratio']:.1f}× xgboost "
            f"(≥ {doc['targets']['ratio_min']:g}), batch-1024 {r['batch1024_ratio']:.2f}× "
            f"(≥ {doc['targets']['batch1024_ratio_min']:g}): "
            + ("met" if not missed else f"NOT met ({', '.join(missed)})")
        )
    before = doc["before"]
    console.print(
        f"before issue 15 §3: engine p50 {before['engine_p50_us']} µs vs xgboost {before['xgboost_p50_us']} µs "
        f"({before['ratio']}×); load average {doc['load_average']}; {doc['total_s']:.0f} s in all"
    )


def _parity(r: dict) -> str:
    accel = (r.get("accelerated_export") or {}).get("parity") or {}
    shown = f"{accel['max_abs_diff']:.2g}" if accel else "no variant"
    return f"{r['parity']['max_abs_diff']:.2g} / {shown}"
