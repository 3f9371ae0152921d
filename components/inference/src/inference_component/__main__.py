"""``python -m inference_component check|serve --model-root DIR``.

``check`` (the recipe's Install step) proves the model loads, matches its digest and predicts;
a non-zero exit fails the deployment. ``serve`` (Run) answers requests until SIGTERM.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .model_dir import find_model_dir


def load_engine(model_root: Path, *, max_rows: int | None = None, max_bytes: int | None = None) -> Any:
    """Load the engine from the model component's artifacts (raises on any problem).

    ``max_rows``/``max_bytes`` are the component's ``MaxRows``/``MaxRequestBytes``: the engine
    enforces the row limit itself, so a request over it gets one error whatever its shape.
    """
    from edge_runtime.inference import Engine

    limits: dict[str, int] = {}
    if max_rows is not None:
        limits["max_batch"] = max_rows
    if max_bytes is not None:
        limits["max_payload_bytes"] = max_bytes
    return Engine.load(find_model_dir(model_root), **limits)


def check(model_root: Path) -> int:
    """Load the model and run one all-zero row through it."""
    try:
        engine = load_engine(model_root)
        features = engine.manifest.get("features") or []
        engine.predict({"instances": [[0.0] * len(features)]})
    except Exception as exc:
        print(f"model check failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    manifest = engine.manifest
    print(f"model ok: {manifest.get('name')} sha256={manifest.get('sha256')} features={len(features)}")
    return 0


def serve(model_root: Path) -> int:
    """Connect to the nucleus, serve until SIGTERM/SIGINT."""
    from .messaging import IpcMessaging
    from .monitoring_publisher import attach as attach_monitoring
    from .service import InferenceService, Settings, thing_name

    messaging = IpcMessaging()
    try:
        settings = Settings.from_config(messaging.configuration(), thing_name())
    except ValueError as exc:
        print(f"cannot serve, bad component configuration: {exc}", file=sys.stderr)
        messaging.close()
        return 2
    try:
        engine = load_engine(model_root, max_rows=settings.max_rows, max_bytes=settings.max_request_bytes)
    except Exception as exc:
        print(f"cannot serve, model failed to load: {type(exc).__name__}: {exc}", file=sys.stderr)
        messaging.close()
        return 2
    # issue 16: the monitoring window (docs/monitoring.md); off, it returns the engine as is
    engine, stop_monitoring = attach_monitoring(engine, messaging, settings, find_model_dir(model_root))
    service = InferenceService(engine, messaging, settings)
    # Everything loaded so far (runtimes, numpy, the model) is moved out of the collector's reach:
    # requests held a second for monitoring reach the oldest generation and trigger full
    # collections, which walked all of it (bench/device_roundtrip.py --gc-probe at 2,000 req/s:
    # 19 in 90 s, up to 68 ms each, under the local p99). Frozen, a full collection walks only
    # what came after.
    gc.freeze()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    print(
        f"serving {service.model} on {settings.request_topic} and {settings.local_request_topic}", flush=True
    )
    stop.wait()
    service.stop()
    stop_monitoring()
    messaging.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inference_component")
    parser.add_argument("command", choices=["check", "serve"])
    parser.add_argument("--model-root", type=Path, required=True)
    args = parser.parse_args(argv)
    return check(args.model_root) if args.command == "check" else serve(args.model_root)


if __name__ == "__main__":
    sys.exit(main())
