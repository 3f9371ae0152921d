"""Monitoring windows: count what the device serves on the training baseline's buckets, publish it.

Issue 16 (docs/monitoring.md): the model component ships ``baseline/statistics.json``; every
window (``MonitoringWindowSeconds``) the component publishes one window document
(``edge_runtime.inference.monitoring.WindowCounter.message``) to ``MonitoringTopic`` on IoT Core,
QoS 1, then starts the next one. An empty window is published too: it says the device is alive
and monitoring. No raw rows leave the device.

Why the counting is deferred: the request path may spend about a microsecond per row on
monitoring. Counting one row costs 3-7 us in plain Python and a batch pays numpy's fixed cost, so
the request path only appends ``(request body, predictions)`` to a queue (a tuple and a deque
append, well under a microsecond); a thread turns the queued bodies into the float32 matrix the
engine read (the same accepted shapes, ``None`` as NaN) once a second and counts them as one batch
with ``WindowCounter.add``. The bodies were already validated by the engine, so the fast
conversion cannot meet a value the engine refused; anything it cannot read goes through the
engine's own ``to_matrix``. A request refused for a non-number (``wrong_type``) is queued with no
predictions, and its non-numeric values are counted per feature (the ``data_type_check``'s
evidence). The queue holds at most ``MAX_PENDING`` requests: a thread starved that long drops the
oldest rather than growing without bound.

Monitoring never stops serving: no baseline (a model exported before issue 16), a baseline on
other features, or ``MonitoringWindowSeconds`` 0 means one log line and the model serves as before.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from edge_runtime.inference import InvalidInput
from edge_runtime.inference.monitoring import Buckets, WindowCounter
from edge_runtime.inference.payload import ENVELOPE_KEYS, to_matrix

from .messaging import Messaging

#: Where the model component's zip puts the baseline (lambdas/core/model_files.py).
STATISTICS = Path("baseline") / "statistics.json"
#: Seconds between two drains of the queue into the window (bounds the queue's memory).
DRAIN_S = 1.0
#: Requests queued at most between two drains.
MAX_PENDING = 100_000
#: Rows gathered, converted and counted between two hand-backs of the GIL (~0.25 ms with 10 features).
CHUNK_ROWS = 64
#: How long the drain sleeps after each chunk: the request path's threads take the GIL meanwhile.
YIELD_S = 0.0002
_NUMBERS = (int, float)


def log(message: str) -> None:
    """One line on the component's log (stdout, which the nucleus keeps per component)."""
    print(f"monitoring: {message}", flush=True)


class MonitoredEngine:
    """The engine, with each answered request (and each refused for a non-number) queued for the
    window. Everything else is the engine's: the service cannot tell them apart."""

    def __init__(self, engine: Any, publisher: MonitoringPublisher) -> None:
        self._engine = engine
        self._append = publisher.pending.append
        self.manifest = engine.manifest

    def predict(self, payload: Any) -> dict[str, Any]:
        try:
            response = self._engine.predict(payload)
        except InvalidInput as exc:
            if exc.code == "wrong_type":
                self._append((payload, None))
            raise
        self._append((payload, response["predictions"]))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class MonitoringPublisher:
    """Owns the window: the drain/publish thread, the counter, the queue the request path fills."""

    def __init__(
        self,
        buckets: Buckets,
        messaging: Messaging,
        *,
        thing: str,
        topic: str,
        window_s: float,
        model_version: str,
        features: list[str],
        task: str = "regression",
    ) -> None:
        self.counter = WindowCounter(buckets)
        self.messaging = messaging
        self.thing, self.topic, self.window_s = thing, topic, float(window_s)
        self.model_version = model_version
        self.features = list(features)
        self.task = task
        self.pending: deque[tuple[Any, Any]] = deque(maxlen=MAX_PENDING)
        #: Engine column of each baseline feature (the matrix is counted in the baseline's order).
        self._columns = [self.features.index(name) for name in buckets.features]
        self._reordered = self._columns != list(range(len(self.features)))
        self._feature_set = frozenset(self.features)
        #: a record's values in feature order, in C (a record lacking a feature was refused)
        picker = itemgetter(*self.features)
        self._pick = picker if len(self.features) > 1 else (lambda record: (picker(record),))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the first window now and the thread that drains and publishes."""
        self.counter.reset()
        self._thread = threading.Thread(target=self._run, name="monitoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Count what is queued and publish the last, partial window if it saw any request."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.drain()
        if self.counter.rows:
            self.publish_window()

    def _run(self) -> None:
        end = self.counter.start + self.window_s
        while not self._stop.wait(max(0.0, min(DRAIN_S, end - time.time()))):
            try:
                self.drain()
                now = time.time()
                if now >= end:
                    self.publish_window(now)
                    end += self.window_s
                    if end <= now:  # the thread was held up past a whole window: start afresh
                        end = now + self.window_s
            except Exception as exc:  # monitoring must never take the service down
                log(f"window failed and was skipped: {type(exc).__name__}: {exc}")
                self.counter.reset()

    # -- the window -----------------------------------------------------------------------------
    def publish_window(self, now: float | None = None) -> dict[str, Any]:
        """Publish the window that ends ``now`` (QoS 1) and start the next one there."""
        now = time.time() if now is None else now
        document = self.counter.message(self.thing, self.model_version, end=now)
        self.counter.reset(now)
        payload = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
        self.messaging.publish_iot(self.topic, payload, self._published)
        return document

    def _published(self, error: BaseException | None) -> None:
        if error is None:
            self.published += 1
        else:
            log(f"a window could not be published to {self.topic}: {error}")

    def drain(self) -> int:
        """Count every queued request into the window; returns the rows counted.

        The rows of the queued requests are gathered as Python sequences and converted to one
        float32 matrix per ``CHUNK_ROWS`` (one numpy call for many requests, not one per request);
        a request the fast reading cannot take goes through the engine's own parser on its own.
        After each chunk the drain sleeps ``YIELD_S``: gathering is pure Python, which keeps the
        GIL until the interpreter's switch interval (5 ms) forces it away. Measured (a thread
        wanting the GIL during a 2,000-request drain, 41 drains, a loaded 2-core machine): in
        chunks of 1,024 it waited 3.5-3.8 ms at the median and 6.4-6.6 ms at the p90 - the request
        path's tail at 2,000 req/s; in chunks of 64 with the sleep, 0.5-0.7 ms and 1.1-3.3 ms.
        The drain then takes ~18 ms of wall time a second instead of ~8, mostly asleep.
        """
        rows: list = []
        values: list[float] = []
        labels: list[str] = []
        counted = 0
        pending = self.pending
        for _ in range(len(pending)):
            payload, predictions = pending.popleft()
            if predictions is None:
                self._count_non_numeric(payload)
                continue
            got = self._table(payload)
            if got is not None and len(got) == len(predictions):
                rows += got
            else:
                x = self._parsed(payload)
                if x is None or len(x) != len(predictions):
                    continue
                counted += self._add(x, [], [])
            self._predictions(predictions, values, labels)
            if len(rows) >= CHUNK_ROWS:
                counted += self._add(np.array(rows, dtype=np.float32), values, labels)
                rows, values, labels = [], [], []
                time.sleep(YIELD_S)  # the GIL to the request path's threads, between chunks
        if rows or values:
            counted += self._add(
                np.array(rows, dtype=np.float32).reshape(-1, len(self.features)), values, labels
            )
        return counted

    def _add(self, x: np.ndarray, values: list[float], labels: list[str]) -> int:
        """Count ``x`` (engine column order) and the predictions gathered with it."""
        if self._reordered:
            x = x[:, self._columns]
        if len(x):
            self.counter.add(x)
        if values:
            self.counter.add(x[:0], predictions=values, labels=labels or None)
        return len(x)

    # -- reading the queued requests ------------------------------------------------------------
    def _rows(self, payload: Any) -> list | None:
        """The request's records or rows, as the engine's payload module accepts them."""
        obj = payload
        for _ in range(5):
            if isinstance(obj, str | bytes | bytearray):
                obj = json.loads(obj)
            if not isinstance(obj, dict):
                break
            keys = [k for k in ENVELOPE_KEYS if k in obj and k not in self._feature_set]
            if len(keys) != 1:
                break
            obj = obj[keys[0]]
        if isinstance(obj, dict):
            return [obj]
        if isinstance(obj, list | tuple) and obj:
            first = obj[0]
            return list(obj) if isinstance(first, dict | list | tuple) else [obj]
        return None

    def _table(self, payload: Any) -> list | None:
        """The request's rows as sequences of numbers/None in the engine's feature order, or None
        when anything about it is unexpected (then the engine's parser reads it)."""
        try:
            if type(payload) is dict and len(payload) == len(self.features):
                return [self._pick(payload)]  # one record, the common IoT request (KeyError: not)
        except KeyError:
            pass
        try:
            rows = self._rows(payload)
            if rows is None:
                return None
            if isinstance(rows[0], dict):
                rows = [self._pick(record) for record in rows]
            n = len(self.features)
            for row in rows:
                if len(row) != n or (type(row) is not list and type(row) is not tuple):
                    return None
            return rows
        except (TypeError, ValueError, KeyError):
            return None

    def _parsed(self, payload: Any) -> np.ndarray | None:
        """The float32 matrix by the engine's own parser (any shape it accepts), or None."""
        index = {name: i for i, name in enumerate(self.features)}
        try:
            return to_matrix(
                payload, self.features, index, allow_missing=True, max_batch=1 << 30, max_bytes=1 << 30
            )
        except InvalidInput:
            return None

    def _predictions(self, predictions: list, values: list[float], labels: list[str]) -> None:
        """A number per prediction (regression: the value; binary: the positive class's
        probability; multiclass: the predicted class's) and the class label of a classifier."""
        if self.task == "regression":
            values.extend(p["value"] for p in predictions)
            return
        positive = self.task == "binary"
        for p in predictions:
            probabilities = list(p["probabilities"].values())
            values.append(probabilities[1 if positive else p["label"]])
            labels.append(str(p["class"]))

    def _count_non_numeric(self, payload: Any) -> None:
        """Per feature, the values of a refused request that are not numbers (null is missing)."""
        try:
            rows = self._rows(payload) or []
        except ValueError:
            return
        found = np.zeros(len(self.features), dtype=np.int64)
        bad_rows = 0
        for row in rows:
            if isinstance(row, dict):
                row = [row.get(name) for name in self.features]
            if not isinstance(row, list | tuple) or len(row) != len(self.features):
                continue
            bad = [j for j, v in enumerate(row) if v is not None and type(v) not in _NUMBERS]
            if bad:
                bad_rows += 1
                found[bad] += 1
        if bad_rows:
            self.counter.non_numeric += found[self._columns]
            self.counter.rows += bad_rows


def attach(
    engine: Any, messaging: Messaging, settings: Any, model_dir: Path
) -> tuple[Any, Callable[[], None]]:
    """``(engine to serve with, stop)``: the monitored engine and its publisher running, or the
    engine unchanged and a no-op when monitoring is off (one log line says why)."""
    publisher = create(engine, messaging, settings, model_dir)
    if publisher is None:
        return engine, lambda: None
    publisher.start()
    log(
        f"publishing a window every {publisher.window_s:g} s to {publisher.topic} "
        f"({len(publisher.features)} features, model {publisher.model_version})"
    )
    return MonitoredEngine(engine, publisher), publisher.stop


def create(engine: Any, messaging: Messaging, settings: Any, model_dir: Path) -> MonitoringPublisher | None:
    """The publisher for this model, or None (logged) when monitoring is off or impossible."""
    if settings.monitoring_window_s <= 0:
        log("off (MonitoringWindowSeconds is 0)")
        return None
    path = Path(model_dir) / STATISTICS
    if not path.is_file():
        log(f"off: the model has no {STATISTICS} (exported without a baseline); serving as usual")
        return None
    manifest = engine.manifest or {}
    features = [str(f) for f in manifest.get("features") or []]
    try:
        buckets = Buckets.from_statistics(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        log(f"off: {path} is not a usable baseline ({exc}); serving as usual")
        return None
    if sorted(buckets.features) != sorted(features):
        log(f"off: the baseline's features {buckets.features} are not the model's {features}")
        return None
    return MonitoringPublisher(
        buckets,
        messaging,
        thing=settings.thing,
        topic=settings.monitoring_topic,
        window_s=settings.monitoring_window_s,
        model_version=str(manifest.get("model_version") or "unversioned"),
        features=features,
        task=str(manifest.get("task") or "regression"),
    )
