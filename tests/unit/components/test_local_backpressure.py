"""Local pub/sub requests meet the same bounded queue and BUSY answers as IoT requests.

Before: a local request was handled on the IPC thread that delivered it, so while inference ran no
further message was read, the queue never filled and BUSY never fired: an overloading requester
saw its latency grow without bound instead of an answer.
"""

from __future__ import annotations

import threading

from .test_inference_service import StubEngine, _request, _results, _start

LOCAL = "edge/inference/request"


def test_a_local_request_never_holds_the_delivering_thread() -> None:
    """Slow inference does not block the IPC thread: it returns at once, the worker answers."""
    engine = StubEngine()
    service, messaging = _start(engine)
    try:
        delivered = threading.Event()

        def deliver() -> None:
            messaging.inject_local(LOCAL, _request("slow", ["gate", "gate"]))
            delivered.set()

        threading.Thread(target=deliver, daemon=True).start()
        assert delivered.wait(5), "the delivering thread waited for inference"
        assert engine.in_predict.wait(5)
        engine.gate.set()
        (result,) = _results(messaging, "local")
        assert (result["id"], result["ok"]) == ("slow", True)
    finally:
        engine.gate.set()
        service.stop()


def test_local_overload_is_answered_busy_and_nothing_is_lost() -> None:
    engine = StubEngine()
    service, messaging = _start(engine, MaxQueuedRequests=5)
    try:
        messaging.inject_local(LOCAL, _request("slow", ["gate", "gate"]))
        assert engine.in_predict.wait(5)  # the worker holds it: the rest wait or are refused
        ids = [f"l{i}" for i in range(20)]
        for rid in ids:
            messaging.inject_local(LOCAL, _request(rid))  # from this (the IPC) thread, never blocked
        rejected = _results(messaging, "local", count=15)
        assert [r["id"] for r in rejected] == ids[5:]  # the queue's 5 wait, the next 15 are refused
        assert {r["error"]["code"] for r in rejected} == {"BUSY"}
        engine.gate.set()
        results = _results(messaging, "local", count=21)
        assert sorted(r["id"] for r in results) == sorted(["slow", *ids])  # each once, none lost
        assert [r["id"] for r in results if r["ok"]] == ["slow", *ids[:5]]  # in arrival order
        assert service.telemetry.snapshot()["rejected"] == {"BUSY": 15}
    finally:
        engine.gate.set()
        service.stop()
