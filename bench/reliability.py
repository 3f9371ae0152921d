"""Reliability figures (issue 13): identities refused, load at and beyond IoT Core's limit, fuzzing.

One local cloud and one device started as ``mlops-edge run`` starts its devices (flow control on:
what the device publishes is held to IoT Core's 100 publishes/s), with the inference component
deployed through greengrassv2 (the set-up of ``bench/device_roundtrip.py``). Then:

- identities: certificates connecting with client ids that are not theirs (another thing's, the
  control plane's, the pipeline's) and subscribing outside their policy (another thing's topics,
  ``#``) on the real broker with paho; every attempt must be refused (CONNACK/SUBACK 0x87), and the
  device whose id was tried must still answer;
- load at the limit: 100 requests/s for ``--load-seconds`` (60): every request answered, 0 lost;
- overload: 300 requests/s for ``--overload-seconds`` (10): every request answered or explicitly
  rejected (THROTTLED/BUSY with its id), 0 silent losses;
- fuzzing: ``--fuzz`` (3,000) payloads, valid and invalid mixed (seeded), at 80/s: every one
  answered (by id, or with a null id for those without a usable one), the component process the
  same one at the end, its RSS bounded.

Prints one table and writes JSON (``--json PATH``). ``--quick`` shortens everything (a smoke run:
5 s, 3 s, 600 payloads). The load client is not throttled itself (on AWS, more than 100
requests/s to one device need more than one connection).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import ssl
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/local_cloud.py
sys.path.insert(0, str(_HERE.parent))


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


roundtrip = _sibling("device_roundtrip")

RSS_GROWTH_LIMIT_MB = 64.0
NOT_AUTHORIZED = 0x87


# -- identities ---------------------------------------------------------------------------------
def _paho(setup: Any, ident: Any, client_id: str) -> tuple[Any, int]:
    """Connect with paho (MQTT 5); returns (client, CONNACK reason code)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    codes: list[int] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(ident.ca_path),
        certfile=str(ident.cert_path),
        keyfile=str(ident.key_path),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.reconnect_delay_set(60, 120)
    client.on_connect = lambda c, u, f, rc, p: (codes.append(int(rc.value)), done.set())
    client.connect(setup.cloud.mqtt.host, setup.cloud.mqtt.port)
    client.loop_start()
    done.wait(5)
    return client, (codes[0] if codes else -1)


def _suback(client: Any, topic_filter: str) -> int:
    codes: list[int] = []
    done = threading.Event()
    client.on_subscribe = lambda c, u, mid, rcs, p: (codes.extend(int(r.value) for r in rcs), done.set())
    client.subscribe(topic_filter, qos=1)
    done.wait(5)
    return codes[0] if codes else -1


def identities(setup: Any) -> dict[str, Any]:
    """Every client id and subscription an IoT policy would refuse, tried on the real broker."""
    cloud, thing = setup.cloud, setup.thing
    attacker = cloud.provision_device(f"attacker-{uuid.uuid4().hex[:6]}", thing_group="reliability")
    other = cloud.provision_device(f"other-{uuid.uuid4().hex[:6]}", thing_group="reliability")
    pipeline = cloud.pipeline_identity
    connects = [
        ("device cert as the serving device's id", attacker, thing),
        ("device cert as another thing's id", attacker, other.thing_name),
        ("device cert as the control plane", attacker, "mlops-edge-control-plane"),
        ("device cert as the pipeline", attacker, "mlops-edge-pipeline"),
        ("device cert as a pipeline tool", attacker, "mlops-edge-tool-x"),
        ("device cert, broker-assigned id", attacker, ""),
        ("pipeline cert as a device", pipeline, thing),
        ("pipeline cert as the control plane", pipeline, "mlops-edge-control-plane"),
    ]
    refused_connects = []
    for label, ident, client_id in connects:
        client, code = _paho(setup, ident, client_id)
        client.loop_stop()
        client.disconnect()
        refused_connects.append({"attempt": label, "connack": code, "refused": code == NOT_AUTHORIZED})
    own, code = _paho(setup, attacker, attacker.thing_name)
    assert code == 0, f"a device could not connect with its own id ({code})"
    filters = [
        f"edge/{thing}/inference/request",
        f"edge/{thing}/#",
        f"$aws/things/{thing}/jobs/#",
        "#",
        "edge/+/inference/result",
        f"$share/g/edge/{thing}/#",
    ]
    subscriptions = [
        {"filter": f, "suback": (c := _suback(own, f)), "refused": c == NOT_AUTHORIZED} for f in filters
    ]
    own.loop_stop()
    own.disconnect()
    # the device whose id was tried first is still connected and answering
    requester = roundtrip._Requester(setup.client, thing, setup.rows)
    probe = f"after-identities-{uuid.uuid4().hex[:6]}"
    requester.send(probe, setup.rows[0])
    deadline = time.monotonic() + 5
    while not requester.answered_of([probe]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {
        "connects": refused_connects,
        "subscriptions": subscriptions,
        "tried": len(refused_connects) + len(subscriptions),
        "refused": sum(a["refused"] for a in refused_connects + subscriptions),
        "device_still_answering": bool(requester.answered_of([probe])),
    }


# -- load ---------------------------------------------------------------------------------------
def load(setup: Any, *, rate: float, seconds: float, tag: str, grace_s: float = 5.0) -> dict[str, Any]:
    """Open loop at ``rate`` for ``seconds``; every answer by id, rejections apart, then stragglers."""
    requester = roundtrip._Requester(setup.client, setup.thing, setup.rows)
    ids = requester.fire(int(rate * seconds), tag, rate)
    last = time.monotonic()
    while len(requester.answered_of(ids)) < len(ids) and time.monotonic() - last < grace_s:
        time.sleep(0.05)
    settled_s = time.monotonic() - last
    time.sleep(0.5)  # duplicates would show now
    out = requester.outcomes(ids)
    ok, rejected = out.pop("ok_latencies_ms"), out.pop("rejected_latencies_ms")
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        **out,
        "duplicates": requester.duplicates,
        "ok_per_s": round(out["ok"] / (seconds + settled_s), 1),
        "ok_p50_ms": _pct(ok, 50),
        "ok_p99_ms": _pct(ok, 99),
        "ok_max_ms": round(max(ok), 1) if ok else None,
        "rejected_p50_ms": _pct(rejected, 50),
        "rejected_max_ms": round(max(rejected), 1) if rejected else None,
        "last_answer_after_s": round(settled_s, 2),
    }


def _pct(values: list[float], q: float) -> float | None:
    value = roundtrip._percentile(values, q)
    return None if value != value else round(value, 2)


# -- fuzzing ------------------------------------------------------------------------------------
class Fuzzer:
    """Seeded payloads, valid and invalid mixed; each with the id its answer will carry (or None)."""

    def __init__(self, rows: list[list[float]], features: list[str], seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.rows, self.features = rows, features
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"fz-{self.n}"

    def _row(self) -> list[Any]:
        return list(self.rng.choice(self.rows))

    def payload(self) -> tuple[bytes, str | None]:
        kind = self.rng.choice(_KINDS)
        return getattr(self, f"_{kind}")()

    def _dumps(self, doc: Any) -> bytes:
        return json.dumps(doc).encode()

    # answered with the id -----------------------------------------------------------------
    def _row_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "instances": [self._row()]}), rid

    def _records_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "records": [dict(zip(self.features, self._row(), strict=True))]}), rid

    def _batch_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [self._row() for _ in range(self.rng.randint(1, 8))]}), rid

    def _body_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"body": json.dumps({"id": rid, "rows": [self._row()]})}), rid

    def _missing_values(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[self.rng.randrange(len(row))] = None
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _nan_literal(self) -> tuple[bytes, str | None]:
        rid = self._id()
        values = ",".join(["NaN"] + [str(v) for v in self._row()[1:]])
        return f'{{"id": "{rid}", "rows": [[{values}]]}}'.encode(), rid

    def _wrong_length(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row = row[:-1] if self.rng.random() < 0.5 else [*row, 0.0]
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _wrong_type(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[self.rng.randrange(len(row))] = self.rng.choice(["x", True, [1], {"a": 1}, ""])
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _unknown_feature(self) -> tuple[bytes, str | None]:
        rid = self._id()
        record = dict(zip(self.features, self._row(), strict=True))
        record["not-a-feature"] = 1.0
        return self._dumps({"id": rid, "records": [record]}), rid

    def _non_finite(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[0] = self.rng.choice([1e39, -1e300])
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _empty_rows(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "instances": self.rng.choice([[], [[]], {}])}), rid

    def _ambiguous(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [self._row()], "records": []}), rid

    def _too_many_rows(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [[0.0] * len(self.features)] * 4097}), rid

    def _deep_inside(self) -> tuple[bytes, str | None]:
        rid, depth = self._id(), self.rng.choice([50, 500])
        return f'{{"id": "{rid}", "instances": {"[" * depth}1{"]" * depth}}}'.encode(), rid

    def _unicode_id(self) -> tuple[bytes, str | None]:
        rid = f"{self._id()}-ünï-😀-{'x' * self.rng.choice([1, 200])}"  # ids are at most 256 characters
        return self._dumps({"id": rid, "rows": [self._row()]}), rid

    def _duplicate_key(self) -> tuple[bytes, str | None]:
        first, last = self._id(), self._id()
        return f'{{"id": "{first}", "rows": [{json.dumps(self._row())}], "id": "{last}"}}'.encode(), last

    # answered with a null id --------------------------------------------------------------
    def _no_id(self) -> tuple[bytes, str | None]:
        return self._dumps(self.rng.choice([{"rows": [self._row()]}, {}, {"id": ""}])), None

    def _id_too_long(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"id": f"{self._id()}-{'x' * self.rng.choice([300, 5000])}", "rows": [self._row()]}
        ), None

    def _id_not_a_string(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"id": self.rng.choice([5, None, True, [], {"x": 1}]), "rows": [self._row()]}
        ), None

    def _garbage(self) -> tuple[bytes, str | None]:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200))), None

    def _truncated(self) -> tuple[bytes, str | None]:
        text = self._dumps({"id": self._id(), "rows": [self._row()]})
        return text[: self.rng.randint(1, len(text) - 1)], None

    def _not_an_object(self) -> tuple[bytes, str | None]:
        return self.rng.choice([b"[1, 2]", b'"text"', b"123", b"null", b"true", b" ", b""]), None

    def _deep_top(self) -> tuple[bytes, str | None]:
        depth = self.rng.choice([5000, 20000])
        return self.rng.choice([b"[" * depth, b"[" * depth + b"]" * depth, b'{"a":' * depth]), None

    def _too_large(self) -> tuple[bytes, str | None]:
        return self._dumps({"id": self._id(), "pad": "x" * (1 << 20)}), None

    def _bad_body(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"body": self.rng.choice(["not json", "[" * 3000, json.dumps({"rows": []})])}
        ), None


#: Payload kinds, a valid one about every third draw; heavy ones (4097 rows, 1 MiB) rarely.
_KINDS = (
    ["row_ok"] * 6
    + ["records_ok", "batch_ok", "body_ok", "missing_values", "nan_literal"] * 2
    + ["wrong_length", "wrong_type", "unknown_feature", "non_finite", "empty_rows", "ambiguous"]
    + ["deep_inside", "unicode_id", "duplicate_key", "no_id", "id_not_a_string", "id_too_long", "garbage"]
    + ["truncated", "not_an_object", "deep_top", "bad_body"]
)  # too_many_rows and too_large are heavy: fuzz() sends them on a schedule instead


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


# -- the run ------------------------------------------------------------------------------------
def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    with roundtrip.deployed_device(workdir, telemetry_s=5.0) as setup:
        requester = roundtrip._Requester(setup.client, setup.thing, setup.rows)
        requester.wait_until_serving()
        result: dict[str, Any] = {**setup.describe()}
        result["identities"] = identities(setup)
        result["load_at_limit"] = load(setup, rate=100.0, seconds=args.load_seconds, tag="limit")
        time.sleep(2.0)
        result["overload"] = load(setup, rate=300.0, seconds=args.overload_seconds, tag="over")
        time.sleep(2.0)
        result["fuzz"] = fuzz(setup, count=args.fuzz)
        result["device_alive"] = setup.device.alive()
    result["pass"] = _passed(result)
    return result


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load-seconds", type=float, default=60.0, help="seconds at 100 req/s")
    parser.add_argument("--overload-seconds", type=float, default=10.0, help="seconds at 300 req/s")
    parser.add_argument("--fuzz", type=int, default=3000, help="fuzzed payloads")
    parser.add_argument("--quick", action="store_true", help="5 s, 3 s and 600 payloads (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--workdir", type=Path, help="keep state and logs here (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.load_seconds, args.overload_seconds, args.fuzz = 5.0, 3.0, 600
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
            result = run(args, Path(tmp))
    print("reliability: a device as `mlops-edge run` configures it (flow control on, publishes <= 100/s)")
    for section, name, value in table(result):
        print(f"  {section:<18} {name:<38} {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
