"""The printed table of ``bench/device_roundtrip.py``: one block per mode, then CPU per request."""

from __future__ import annotations

from typing import Any


def _line(name: str, value: object, note: str = "") -> None:
    print(f"  {name:<26} {value!s:>16}  {note}")


def _mqtt(result: dict[str, Any], targets: dict[str, Any]) -> None:
    print("MQTT single row: client -> broker -> core -> IPC -> inference component -> IPC -> core -> broker")
    _line("rate (req/s)", result["rate_per_s"])
    _line("sent / answered", f"{result['sent']} / {result['answered']}")
    _line("lost", result["lost"], f"target {targets['lost']}")
    _line("error results", result["errors"], f"of which THROTTLED/BUSY {result['rejected']}")
    _line("latency p50 (ms)", result["p50_ms"], f"target <= {targets['p50_ms']}")
    _line("latency p90 (ms)", result["p90_ms"])
    _line("latency p99 (ms)", result["p99_ms"], f"target <= {targets['p99_ms']}")
    _line("latency max (ms)", result["max_ms"])
    seq = result["closed_loop"]
    _line(
        "closed loop (1 at a time)",
        f"p50 {seq['p50_ms']} ms",
        f"p99 {seq['p99_ms']} ms ({seq['answered']}/{seq['requests']})",
    )
    _line("result", "PASS" if result["pass"] else "FAIL")


def _local(result: dict[str, Any]) -> None:
    print("local pub/sub: consumer component -> IPC -> inference component -> IPC -> consumer component")
    _line(
        "rate (req/s)", f"{result['send_rate_per_s']} of {result['rate_per_s']:g}", "target >= 2000 for 60 s"
    )
    _line("duration (s)", result["duration_s"])
    _line("sent / answered", f"{result['sent']} / {result['answered']}")
    _line("lost", result["lost"], "target 0")
    _line("error results", result["errors"], str(result["error_codes"] or ""))
    _line("latency p50 (ms)", result["p50_ms"])
    _line("latency p90 (ms)", result["p90_ms"])
    _line("latency p99 (ms)", result["p99_ms"], "target <= 10")
    _line("latency max (ms)", result["max_ms"])
    if "component_queued_p99_ms" in result:
        q50, q99 = result["component_queued_p50_ms"], result["component_queued_p99_ms"]
        _line("in the component's queue", f"p50 {q50} ms", f"p99 {q99} ms (its share of the latency)")
    _line("result", "PASS" if result["pass"] else "FAIL")
    for role, gc in result.get("gc", {}).items():  # --gc-probe
        gens = ", ".join(
            f"gen{g} {s['count']} ({s['total_ms']} ms, max {s['max_ms']})"
            for g, s in gc["generations"].items()
        )
        print(
            f"  gc {role}: {gens}; in the window {gc['window_pauses_over_5ms']} pauses >= 5 ms, longest {gc['window_longest_ms']} ms"
        )


def _batches(result: dict[str, Any]) -> None:
    print(f"batches over MQTT: {result['rows_per_request']} rows a request, {result['window']} outstanding")
    _line("requests answered / s", result["requests_per_s"], "the device publishes <= 100/s and 512 KiB/s")
    _line("rows / s", result["rows_per_s"], f"target >= {result['target_rows_per_s']}")
    _line("ok / unanswered", f"{result['ok']} / {result['unanswered']}", str(result["error_codes"] or ""))
    _line("latency p50 (ms)", result["p50_ms"])
    _line("result", "PASS" if result["pass"] else "FAIL")


def _hops(result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"hops: {result['error']}")
        return
    print(
        f"hops of one MQTT request (perf trace, {result['traced']} of {result['requests']} requests; "
        f"the client measured p50 {result['client_p50_us']} us with tracing on)"
    )
    print(f"  {'hop':<60}{'p50 us':>8}{'p90 us':>8}")
    for name, figures in result["hops_us"].items():
        print(f"  {name:<60}{figures['p50']:>8}{figures['p90']:>8}")


def print_table(out: dict[str, Any], targets: dict[str, Any]) -> None:
    """Print every mode that ran, then the CPU milliseconds per request of each process."""
    device = out["device"]
    if device["configured_as_mlops_edge_run"]:
        print("device configured as `mlops-edge run` configures it: flow control on (publishes <= 100/s)")
    else:
        print(f"device flow control {device['device_flow_control']}: NOT as `mlops-edge run` runs devices")
    print(f"load average before {out['loadavg_before']}, after {out['loadavg_after']}")
    blocks = (("mqtt", lambda r: _mqtt(r, targets)), ("local_ipc", _local), ("batches", _batches))
    for key, show in blocks:
        if key in out:
            show(out[key])
    if "hops" in out:
        _hops(out["hops"])
    roles = ["broker", "core", "inference component", "consumer component", "load client"]
    ran = [key for key, _ in blocks if key in out]
    idle = out.get("idle_cpu_ms_per_s", {})
    print("CPU with nothing to answer (ms per second): " + ", ".join(f"{k} {v}" for k, v in idle.items()))
    if not ran:
        print(f"overall: {'PASS' if out['pass'] else 'FAIL'}")
        return
    print("CPU ms per request (user + system, all threads; idle CPU included)")
    print(f"  {'process':<22}" + "".join(f"{key:>14}" for key in ran))
    for role in roles:
        cells = [out[key].get("cpu_ms_per_request", {}).get(role) for key in ran]
        if any(c is not None for c in cells):
            print(f"  {role:<22}" + "".join(f"{'-' if c is None else c:>14}" for c in cells))
    print(f"overall: {'PASS' if out['pass'] else 'FAIL'}")
