"""Fuzzing run: payloads at a fixed rate; every one answered, the component alive, RSS bounded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import roundtrip
from .fuzz_payloads import Fuzzer

RSS_GROWTH_LIMIT_MB = 64.0


def _component_pid(setup: Any) -> int | None:
    """The inference component's process: ``inference_component serve`` under this device's root."""
    root = str(setup.device.root)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "inference_component serve" in cmdline and root in cmdline:
            return int(proc.name)
    return None


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def fuzz(setup: Any, *, count: int, rate: float = 80.0) -> dict[str, Any]:
    """``count`` fuzzed payloads at ``rate``; every one answered, the component alive, RSS bounded."""
    features = json.loads((setup.model_dir / "model.json").read_text())["features"]
    fuzzer = Fuzzer(setup.rows, features)
    requester = roundtrip._Requester(setup.client, setup.thing, setup.rows)
    pid = _component_pid(setup)
    rss = [_rss_mb(pid)]
    with_id: list[str] = []
    without_id = 0
    started = time.perf_counter()
    for i in range(count):
        due = started + i / rate
        if due > time.perf_counter():
            time.sleep(due - time.perf_counter())
        if i % 500 == 250:  # a few heavy ones: 4,097 rows (over MaxRows), over 1 MiB
            body, rid = fuzzer._too_many_rows() if i % 1000 == 250 else fuzzer._too_large()
        else:
            body, rid = fuzzer.payload()
        if rid is None:
            without_id += 1
        else:
            with_id.append(rid)
        requester.send_raw(rid, body)
        if i % int(rate) == 0:
            rss.append(_rss_mb(pid))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with requester.lock:
            nulls = sum(1 for a in requester.unmatched if a.get("id") is None)
        if len(requester.answered_of(with_id)) == len(with_id) and nulls >= without_id:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    rss.append(_rss_mb(pid))
    out = requester.outcomes(with_id)
    with requester.lock:
        nulls = sum(1 for a in requester.unmatched if a.get("id") is None)
        codes = dict(out["error_codes"])
        for answer in requester.unmatched:
            code = (answer.get("error") or {}).get("code", "?")
            codes[code] = codes.get(code, 0) + 1
    samples = [r for r in rss if r is not None]
    return {
        "payloads": count,
        "with_id": len(with_id),
        "with_id_answered": len(with_id) - out["unanswered"],
        "without_id": without_id,
        "without_id_answered": nulls,
        "answered": len(with_id) - out["unanswered"] + nulls,
        "ok": out["ok"],
        "error_codes": dict(sorted(codes.items())),
        "duplicates": requester.duplicates,
        "component_pid_same": pid is not None and pid == _component_pid(setup),
        "rss_mb": {
            "start": round(samples[0], 1) if samples else None,
            "max": round(max(samples), 1) if samples else None,
            "end": round(samples[-1], 1) if samples else None,
        },
        "rss_bounded": bool(samples) and max(samples) - samples[0] < RSS_GROWTH_LIMIT_MB,
    }
