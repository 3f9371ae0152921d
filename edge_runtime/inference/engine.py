"""The on-device inference engine: an ONNX model directory served with ONNX Runtime.

Runs inside the Greengrass inference component, so it imports only numpy, onnxruntime and the
standard library. A single row (the common IoT request) takes a fast path: values are checked in
plain Python and written into a float32 buffer already bound to the session with IOBinding, so a
prediction costs one ``run_with_iobinding`` and no allocation. Each thread gets its own buffers and
binding (ONNX Runtime sessions are safe to run concurrently), so callers need no lock.

Two variants of a model may sit in its directory: ``model.onnx`` (onnxruntime's own TreeEnsemble
kernel, always there) and ``model.accel.onnx`` (the ``mlops_edge.trees`` custom op, ~3x faster;
edge_runtime/inference/accel). The accelerated one runs when model.json lists it as having passed
the export's parity gate, its digest matches, and this machine has the compiled library; otherwise
the standard one runs. Every answer says which (``"engine"``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from collections.abc import Callable, Sequence
from math import isfinite
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_runtime.inference.errors import InferenceFailed, InvalidInput, ModelLoadError
from edge_runtime.inference.payload import decode, to_matrix

__all__ = [
    "ACCELERATED",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "STANDARD",
    "SUPPORTED_FORMAT_VERSIONS",
    "Engine",
]

SUPPORTED_FORMAT_VERSIONS = (1,)
DEFAULT_MAX_BATCH = 1024
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20  # a 1024-row batch of 30 features is about 300 KiB of JSON
_TEXT = (str, bytes, bytearray, memoryview)
_NUMBERS = frozenset((float, int))
#: The ``"engine"`` of an answer: which model variant ran.
ACCELERATED, STANDARD = "accelerated", "standard"
_REQUIRED_KEYS = ("format_version", "task", "features", "input_name", "output_names", "classes", "sha256")


class _Binding:
    """One thread's pre-bound single-row input and output buffers."""

    __slots__ = ("binding", "label", "labels", "out", "outputs", "raw", "x")

    def __init__(
        self, session: ort.InferenceSession, input_name: str, outputs: list[str], n_features: int, k: int
    ):
        self.x = np.zeros((1, n_features), dtype=np.float32)
        self.raw = memoryview(self.x).cast("B")  # struct.pack_into writes the row here
        self.binding = session.io_binding()
        self.binding.bind_input(input_name, "cpu", 0, np.float32, list(self.x.shape), self.x.ctypes.data)
        if k:  # classifier: label (1,) int64 then probabilities (1, k) float32
            self.label = np.zeros((1,), dtype=np.int64)
            self.out = np.zeros((1, k), dtype=np.float32)
            self.binding.bind_output(outputs[0], "cpu", 0, np.int64, [1], self.label.ctypes.data)
            self.binding.bind_output(outputs[1], "cpu", 0, np.float32, [1, k], self.out.ctypes.data)
        else:
            self.label = None
            self.out = np.zeros((1, 1), dtype=np.float32)
            self.binding.bind_output(outputs[0], "cpu", 0, np.float32, [1, 1], self.out.ctypes.data)
        # The answer is read through memoryviews (Python floats of the float32 values, as tolist()
        # gives): half numpy's cost; indexing the float view, not a struct unpack, ~0.05 us less.
        self.labels = memoryview(self.label).cast("B").cast("q") if k else None
        self.outputs = memoryview(self.out).cast("B").cast("f")


class Engine:
    """A loaded, digest-checked model. Create with ``Engine.load(model_dir)``."""

    def __init__(
        self,
        session: ort.InferenceSession,
        manifest: dict,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        allow_missing: bool = True,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        engine: str = STANDARD,
        fallback_reason: str | None = None,
    ) -> None:
        self._session = session
        #: Which variant this engine runs (ACCELERATED or STANDARD), and why not the accelerated one.
        self.engine = engine
        self.fallback_reason = fallback_reason
        # Bound once: the public wrapper is then one call, no attribute lookups per prediction.
        self._run_binding = session.run_with_iobinding
        self.manifest = manifest
        self.features: list[str] = [str(f) for f in manifest["features"]]
        self.task: str = manifest["task"]
        self.max_batch = int(max_batch)
        self.allow_missing = bool(allow_missing)
        self.max_payload_bytes = int(max_payload_bytes)
        self._n = len(self.features)
        self._index = {name: i for i, name in enumerate(self.features)}
        self._input = manifest["input_name"]
        self._outputs = list(manifest["output_names"])
        self._classes = list(manifest["classes"]) if self.task != "regression" else []
        self._class_keys = [str(c) for c in self._classes]
        self._probabilities = _dict_builder(self._class_keys)
        self._k = len(self._classes)
        self._p0, self._p1 = self._class_keys if self._k == 2 else ("", "")  # a binary answer's keys
        self._name = manifest.get("name")
        self._version = self.version
        self._local = threading.local()
        self._pack = struct.Struct(f"={self._n}f").pack_into
        self._float_types = [float] * self._n  # the fast path's exact-type check, for all-float rows
        self._check_graph()

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        allow_missing: bool = True,
        intra_op_threads: int = 1,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        accelerated: bool = True,
    ) -> Engine:
        """Read model.json + the model, verify the SHA-256, open an ONNX Runtime session.

        One intra-op thread by default: a single row gains nothing from a pool, and a device core
        shared with other components should not be spun on. ``accelerated=False`` runs the
        standard variant even where the accelerated one could run (the export's golden answers).
        """
        model_dir = Path(model_dir)
        manifest = _read_manifest(model_dir / "model.json")
        threads = max(1, int(intra_op_threads))
        # The standard model is checked even when the accelerated one will run: a package with a
        # corrupt model.onnx is refused as a whole, and the fallback is always there.
        data = _read_checked(model_dir / "model.onnx", manifest["sha256"])
        session, reason = None, "disabled by the caller"
        if accelerated:
            session, reason = _accelerated_session(model_dir, manifest, threads)
        limits = {
            "max_batch": max_batch,
            "allow_missing": allow_missing,
            "max_payload_bytes": max_payload_bytes,
        }
        if session is not None:
            try:
                return cls(session, manifest, **limits, engine=ACCELERATED)
            except ModelLoadError as exc:  # the variant disagrees with model.json: run the standard one
                reason = str(exc)
        session = _open_session(data, threads, model_dir / "model.onnx")
        return cls(session, manifest, **limits, engine=STANDARD, fallback_reason=reason)

    def _check_graph(self) -> None:
        """The manifest must describe this graph: names, width, class count."""
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != self._input:
            raise ModelLoadError(
                f"model input is {[i.name for i in inputs]}, model.json says {self._input!r}"
            )
        width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
        if width != self._n:
            raise ModelLoadError(f"model takes {width} features, model.json lists {self._n}")
        names = [o.name for o in self._session.get_outputs()]
        expected = 2 if self._k else 1
        if names != self._outputs or len(names) != expected:
            raise ModelLoadError(f"model outputs are {names}, model.json says {self._outputs}")
        if self._k:
            probe = self._session.run(None, {self._input: np.zeros((1, self._n), np.float32)})[1]
            if probe.shape[1] != self._k:
                raise ModelLoadError(
                    f"model gives {probe.shape[1]} probabilities, model.json has {self._k} classes"
                )

    @property
    def version(self) -> str | None:
        """The registry model version the pipeline stamped into model.json (None before that)."""
        return self.manifest.get("model_version")

    # -- prediction ------------------------------------------------------------------------------

    def predict(self, payload: object) -> dict:
        """Answer one request: ``{"predictions": [...], "model": {"name", "version"}, "engine"}``.

        Raises ``InvalidInput`` for any input it cannot answer, ``InferenceFailed`` only if ONNX
        Runtime itself fails on validated input.

        A single finite row (or complete record) of exact ``float``/``int`` takes the fast path,
        inline (a Python call is ~0.05 us of a ~5 us answer), checked in C: exact types (bool and
        str are no numbers), ``sum`` for NaN/Infinity (missing values go the general way), and
        ``struct`` refuses values beyond float32's range as it fills the bound buffer. Anything
        else takes the general path, which validates everything and raises the precise error.
        """
        row = payload
        if type(row) is not list:  # a row first: isinstance below costs a list ~0.05 us
            if isinstance(payload, _TEXT):  # a tuple: measurably cheaper than a union here
                row = payload = decode(payload, self.max_payload_bytes)
            if type(row) is dict:
                row = self._record_row(row)
        # All-float rows (JSON's usual) match the list of types at once; mixed ones check the set.
        if (
            type(row) is list
            and len(row) == self._n
            and (list(map(type, row)) == self._float_types or _NUMBERS.issuperset(map(type, row)))
        ):
            try:
                b = self._local.binding
            except AttributeError:
                b = self._local.binding = _Binding(
                    self._session, self._input, self._outputs, self._n, self._k
                )
            try:
                # sum, not fsum: twice as fast, and it cannot overflow on values struct accepts (at
                # most float32's max each); a sum that does only sends the row to the general path.
                finite = isfinite(sum(row))
                if finite:
                    self._pack(b.raw, 0, *row)
            except (OverflowError, ValueError):
                finite = False
            if finite:
                try:
                    self._run_binding(b.binding)  # never with RunOptions(): that is the slow path
                except Exception as exc:
                    raise InferenceFailed(f"ONNX Runtime failed: {exc}") from exc
                if self._k:  # a binary answer reads its two probabilities inline (no call: ~0.04 us)
                    label, o = b.labels[0], b.outputs
                    p = {self._p0: o[0], self._p1: o[1]} if self._k == 2 else self._probabilities(o)
                    answer = {"label": label, "class": self._classes[label], "probabilities": p}
                else:
                    answer = {"value": b.outputs[0]}
                return {
                    "predictions": [answer],
                    "model": {"name": self._name, "version": self._version},
                    "engine": self.engine,
                }
        return self._predict_general(payload)

    def _predict_general(self, payload: object) -> dict:
        """Every payload the fast path does not take: validated in full, one session run."""
        try:
            x = to_matrix(
                payload,
                self.features,
                self._index,
                allow_missing=self.allow_missing,
                max_batch=self.max_batch,
                max_bytes=self.max_payload_bytes,
            )
        except InvalidInput:
            raise
        except RecursionError as exc:
            raise InvalidInput("bad_shape", "payload is nested too deeply to be a request") from exc
        except Exception as exc:  # odd Python objects handed in directly: still the caller's input
            raise InvalidInput(
                "bad_shape", f"payload could not be read: {type(exc).__name__}: {exc}"
            ) from exc
        return {
            "predictions": self.predict_matrix(x),
            "model": {"name": self._name, "version": self._version},
            "engine": self.engine,
        }

    def predict_matrix(self, x: np.ndarray) -> list[dict]:
        """Predictions for an already numeric (n, f) matrix (NaN = missing); one session run."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self._n:
            raise InvalidInput("wrong_length", f"matrix has shape {x.shape}, the model takes (n, {self._n})")
        if x.shape[0] == 0:
            raise InvalidInput("empty", "matrix has no rows")
        try:
            outputs = self._session.run(self._outputs, {self._input: x})
        except Exception as exc:
            raise InferenceFailed(f"ONNX Runtime failed: {exc}") from exc
        if not self._k:
            return [{"value": v} for v in outputs[0].reshape(-1).tolist()]
        classes = self._classes
        probabilities = map(self._probabilities, outputs[1].tolist())
        return [
            {"label": label, "class": classes[label], "probabilities": probs}
            for label, probs in zip(outputs[0].tolist(), probabilities, strict=False)  # n each
        ]

    def _record_row(self, record: dict) -> list | None:
        """A complete record's values in feature order, or None (the general path then says why)."""
        try:
            return [record[name] for name in self.features] if len(record) == self._n else None
        except KeyError:
            return None


def _dict_builder(keys: list[str]) -> Callable[[Sequence[float]], dict]:
    """``p -> {keys[i]: p[i]}``, the probabilities of an answer.

    A dict display for the usual 2-4 classes: a third of ``dict(zip(keys, p))``'s cost, which is
    0.3 of a classifier's ~5 us single-row answer and most of its batch answer beyond the kernel.
    """
    if len(keys) == 2:
        k0, k1 = keys
        return lambda p: {k0: p[0], k1: p[1]}
    if len(keys) == 3:
        k0, k1, k2 = keys
        return lambda p: {k0: p[0], k1: p[1], k2: p[2]}
    if len(keys) == 4:
        k0, k1, k2, k3 = keys
        return lambda p: {k0: p[0], k1: p[1], k2: p[2], k3: p[3]}
    return lambda p: dict(zip(keys, p, strict=True))


def _read_checked(path: Path, sha256: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the model ({exc.strerror})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelLoadError(
            f"{path}: SHA-256 {digest} does not match model.json's {sha256}; "
            "the model file is corrupt or from another version"
        )
    return data


def _open_session(data: bytes, threads: int, path: Path, library: Path | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # A device shares its cores and memory with others (100 of them on one machine in issue 12):
    # no arena keeping a large batch's buffers after it, and no pool thread spinning for work.
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False  # nothing to plan in a one-node graph; ~0.04 us off each run
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        if library is not None:
            opts.register_custom_ops_library(str(library))
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelLoadError(f"{path}: ONNX Runtime cannot load it: {exc}") from exc


def _accelerated_session(
    model_dir: Path, manifest: dict, threads: int
) -> tuple[ort.InferenceSession | None, str | None]:
    """The accelerated variant's session, or None and why the standard one runs instead.

    Never raises: a missing library, a variant model.json does not vouch for, or one that does not
    load only means the standard model answers (which ``load`` still checks strictly).
    """
    from edge_runtime.inference import accel

    entry = manifest.get("accelerated")
    if not isinstance(entry, dict) or not entry.get("file"):
        reason = entry.get("reason") if isinstance(entry, dict) else None
        return None, f"the model has no accelerated variant: {reason or 'exported before there was one'}"
    if not (entry.get("parity") or {}).get("passed") or not (entry.get("parity_vs_standard") or {}).get(
        "passed"
    ):
        return None, "model.json does not record the accelerated variant passing its parity gate"
    library = accel.library_path()
    if library is None:
        return None, f"the {accel.LIBRARY_NAME} library is not built on this machine"
    path = model_dir / Path(str(entry["file"])).name
    try:
        data = _read_checked(path, str(entry.get("sha256")))
        return _open_session(data, threads, path, library), None
    except ModelLoadError as exc:
        return None, str(exc)


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the manifest ({exc.strerror})") from exc
    except ValueError as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{path}: the manifest must be a JSON object")
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ModelLoadError(f"{path}: missing keys {', '.join(missing)}")
    if manifest["format_version"] not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelLoadError(
            f"{path}: format_version {manifest['format_version']!r} is not supported "
            f"(this engine reads {SUPPORTED_FORMAT_VERSIONS}); update the inference component"
        )
    if manifest["task"] not in ("regression", "binary", "multiclass"):
        raise ModelLoadError(f"{path}: unknown task {manifest['task']!r}")
    if manifest["task"] != "regression" and not manifest["classes"]:
        raise ModelLoadError(f"{path}: a {manifest['task']} model needs its classes")
    return manifest
