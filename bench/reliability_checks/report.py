"""The run's verdict (every criterion of issue 13) and the table printed after it."""

from __future__ import annotations

from typing import Any


def _passed(r: dict[str, Any]) -> bool:
    ids, lim, over, fz = r["identities"], r["load_at_limit"], r["overload"], r["fuzz"]
    return (
        ids["refused"] == ids["tried"]
        and ids["device_still_answering"]
        and lim["unanswered"] == 0
        and lim["rejected"] == 0
        and over["unanswered"] == 0
        and set(over["error_codes"]) <= {"THROTTLED", "BUSY"}
        and fz["answered"] == fz["payloads"]
        and fz["duplicates"] == 0
        and fz["component_pid_same"]
        and fz["rss_bounded"]
        and r["device_alive"]
    )


def table(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    ids, lim, over, fz = r["identities"], r["load_at_limit"], r["overload"], r["fuzz"]
    rejected = ", ".join(f"{k} {v}" for k, v in over["error_codes"].items()) or "none"
    return [
        ("identities", "refused / tried", f"{ids['refused']} / {ids['tried']}"),
        (
            "",
            "client ids (CONNACK 0x87)",
            f"{sum(a['refused'] for a in ids['connects'])} / {len(ids['connects'])}",
        ),
        (
            "",
            "subscriptions (SUBACK 0x87)",
            f"{sum(s['refused'] for s in ids['subscriptions'])} / {len(ids['subscriptions'])}",
        ),
        ("", "device whose id was tried answers", "yes" if ids["device_still_answering"] else "NO"),
        (f"100 req/s x {lim['seconds']:g} s", "sent / answered ok", f"{lim['sent']} / {lim['ok']}"),
        ("", "rejected / lost", f"{lim['rejected']} / {lim['unanswered']}"),
        ("", "latency p50 / p99 (ms)", f"{lim['ok_p50_ms']} / {lim['ok_p99_ms']}"),
        (
            f"300 req/s x {over['seconds']:g} s",
            "sent / answered ok",
            f"{over['sent']} / {over['ok']} ({over['ok_per_s']}/s)",
        ),
        ("", "explicitly rejected", f"{over['rejected']} ({rejected})"),
        ("", "silently lost", str(over["unanswered"])),
        ("", "ok latency p50 / max (ms)", f"{over['ok_p50_ms']} / {over['ok_max_ms']}"),
        ("", "rejection latency p50 / max (ms)", f"{over['rejected_p50_ms']} / {over['rejected_max_ms']}"),
        ("fuzzing", "payloads answered", f"{fz['answered']} / {fz['payloads']} ({fz['with_id']} with an id)"),
        (
            "",
            "ok / error results",
            f"{fz['ok']} / {fz['answered'] - fz['ok']} ({len(fz['error_codes'])} codes)",
        ),
        ("", "component process", "same, alive" if fz["component_pid_same"] else "RESTARTED or gone"),
        ("", "component RSS start / max / end (MB)", "{start} / {max} / {end}".format(**fz["rss_mb"])),
        ("result", "", "PASS" if r["pass"] else "FAIL"),
    ]
