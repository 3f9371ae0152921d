"""Durable state for moto's in-memory backends: every acknowledged mutation survives a crash.

moto keeps every backend in memory. The dispatch layer (``server.py``) calls
:meth:`Durability.after` for every request it served, *before* the response is sent; a request
that may mutate (see :func:`is_mutating`) makes the touched service's snapshot durable:

- one file per service, ``<state>/moto/<service>.pickle``, holding that service's backends for
  every account and region, written to a temporary file, ``fsync``-ed, renamed over the old one
  and the directory ``fsync``-ed (:func:`atomic_write`). A kill at any instant leaves either the
  previous snapshot or the new one, never a torn file; a stale temporary file is ignored and
  removed at start-up.
- S3 object bodies are not pickled into the snapshot: each body is written once, content
  addressed, under ``<state>/moto/s3-objects/<sha256>`` (itself atomic + fsync-ed), and the
  snapshot refers to it by digest. A body's digest is cached per object (invalidated when moto
  rewrites the body), so the snapshot after a PutObject costs the new body once plus the pickling
  of the objects' metadata, not the bytes of every object.
- concurrent mutating requests to one service share snapshots (group commit): a request takes a
  ticket once its mutation is done; the snapshot started after the ticket covers it, so a waiter
  whose ticket is already covered returns at once.

Services that keep their own state register a saver (``register``): CloudFormation's stacks,
and the Greengrass and SageMaker providers write their files on every change themselves (atomic
and fsync-ed through :func:`atomic_write`).

What is not kept: work in flight (threads, a running Step Functions execution's progress, a
training job) — only data; executions running at a crash are reported ``ABORTED`` after restart
and training jobs ``Failed`` (by the SageMaker provider).
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import importlib
import io
import logging
import os
import pickle
import re
import signal
import sys
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

# service -> (module, BackendDict attribute)
SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("moto.s3.models", "s3_backends"),
    "iam": ("moto.iam.models", "iam_backends"),
    "sts": ("moto.sts.models", "sts_backends"),
    "iot": ("moto.iot.models", "iot_backends"),
    "lambda": ("moto.awslambda_simple.models", "lambda_simple_backends"),
    "logs": ("moto.logs.models", "logs_backends"),
    "sagemaker": ("moto.sagemaker.models", "sagemaker_backends"),
    "stepfunctions": ("moto.stepfunctions.parser.models", "stepfunctions_parser_backends"),
    # resources CloudFormation stacks make (the stacks themselves: services/cloudformation)
    "secretsmanager": ("moto.secretsmanager.models", "secretsmanager_backends"),
    "ssm": ("moto.ssm.models", "ssm_backends"),
    "events": ("moto.events.models", "events_backends"),
    "ecr": ("moto.ecr.models", "ecr_backends"),  # images that stand in for a stack's image assets
}

#: SigV4 signing name (the credential scope's service) -> the state it may change.
SIGNING_NAMES: dict[str, str] = {
    "s3": "s3",
    "iam": "iam",
    "sts": "sts",
    "iot": "iot",
    "lambda": "lambda",
    "logs": "logs",
    "sagemaker": "sagemaker",
    "states": "stepfunctions",
    "secretsmanager": "secretsmanager",
    "ssm": "ssm",
    "events": "events",
    "ecr": "ecr",
    "cloudformation": "cloudformation",
    # greengrass (control and IoT Jobs data plane): the provider writes its file on every change
}

#: Operation-name prefixes that only read (all services' read operations start with one of them).
_READ_PREFIXES = (
    "Get", "List", "Describe", "Head", "Search", "Query", "Scan", "BatchGet", "Lookup", "Select",
    "Validate", "Estimate", "Check", "Test", "Simulate", "Preview", "Filter", "Retrieve",
)  # fmt: skip
#: Read operations that start with none of the prefixes above but change nothing that is kept.
_READ_OPERATIONS = {
    "Invoke",
    "InvokeAsync",
    "GenerateCredentialReport",
    "AssumeRole",
    "DecodeAuthorizationMessage",
}
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_REST_READS = re.compile(r"^/[0-9-]+/functions/[^/]+/invocations$|^/[0-9-]+/functions/[^/]+/invoke-async/?$")


def signing_service(request: Any) -> str:
    """The credential scope's service of a SigV4 request (header or presigned query), or ''."""
    auth = request.headers.get("Authorization", "")
    credential = ""
    if "Credential=" in auth:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = request.args.get("X-Amz-Credential", "")
    parts = credential.split("/")
    return parts[3] if len(parts) >= 5 else ""


def operation_name(request: Any) -> str:
    """The operation of a JSON (``X-Amz-Target``) or query (``Action``) protocol request, or ''."""
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    action = request.args.get("Action", "")
    if action:
        return str(action)
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return str(request.form.get("Action", ""))
    return ""


def is_mutating(request: Any) -> bool:
    """Whether a request may change state: not a GET/HEAD, and not a read operation by name.

    REST protocols (S3, Lambda, Greengrass, IoT) read with GET/HEAD and write with PUT/POST/
    PATCH/DELETE; JSON and query protocols always POST, so their operation name decides. A write
    misjudged as a read would be lost at a crash, a read misjudged as a write only costs a
    snapshot, so anything unrecognised counts as a write.
    """
    if request.method in _READ_METHODS:
        return False
    operation = operation_name(request)
    if not operation:
        # REST write, except Lambda's Invoke (POST .../functions/<name>/invocations), which changes
        # no kept state (its log events are CloudWatch Logs writes of their own)
        return not _REST_READS.search(request.path)
    if operation in _READ_OPERATIONS:
        return False
    return not operation.startswith(_READ_PREFIXES)


# -- durable files ---------------------------------------------------------------------------------

#: Test hook (``LOCAL_CLOUD_CRASH_BEFORE_RENAME=<file name>[:<n>]``): SIGKILL this process after
#: the n-th (default first) temporary file for that name is written and fsync-ed, before it is
#: renamed into place.
_CRASH_NAME, _, _CRASH_AT = os.environ.get("LOCAL_CLOUD_CRASH_BEFORE_RENAME", "").partition(":")
_CRASH_WRITES = [int(_CRASH_AT or 1)]
_TMP_SUFFIX = ".tmp"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new content, durably."""
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}{_TMP_SUFFIX}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if _CRASH_NAME and path.name == _CRASH_NAME:
        _CRASH_WRITES[0] -= 1
        if _CRASH_WRITES[0] == 0:
            LOG.warning("test hook: killed between writing %s and renaming it", tmp)
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def remove_stale_temporaries(directory: Path) -> int:
    """Temporary files a crash left behind (never read: the renamed file is the state)."""
    removed = 0
    if directory.is_dir():
        for tmp in directory.glob(f".*{_TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


# -- S3 bodies, content addressed ----------------------------------------------------------------


class BlobStore:
    """S3 object bodies by SHA-256, each written once (atomic, fsync-ed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._digests: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self.written = 0
        self.referenced: set[str] = set()

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, key: Any) -> str:
        with self._lock:
            digest = self._digests.get(key)
        if digest is not None:
            return digest
        try:
            value = key.value
        except ValueError:  # a disposed key (its buffer closed): moto's own __getstate__ keeps b""
            value = b""
        digest = hashlib.sha256(value).hexdigest()
        path = self.path(digest)
        if not path.exists():
            atomic_write(path, value)
            self.written += 1
        with self._lock:
            self._digests[key] = digest
        return digest

    def forget(self, key: Any) -> None:
        with self._lock:
            self._digests.pop(key, None)

    def read(self, digest: str) -> bytes:
        self.referenced.add(digest)
        return self.path(digest).read_bytes()

    def remember(self, key: Any, digest: str) -> None:
        """A restored key's digest, so the first snapshot after a restart hashes nothing again."""
        with self._lock:
            self._digests[key] = digest

    def collect_garbage(self) -> int:
        """Delete bodies the restored snapshot does not refer to (deleted or overwritten objects)."""
        removed = 0
        if self.root.is_dir():
            for path in self.root.glob("*/*"):
                if path.name not in self.referenced and not path.name.endswith(_TMP_SUFFIX):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


_BLOBS: BlobStore | None = None  # the state dir's store (set by Durability / restore_moto)
_PATCHED_FAKE_KEY = False


def _watch_fake_key_values() -> None:
    """Forget a body's cached digest when moto rewrites an existing key's body."""
    global _PATCHED_FAKE_KEY
    if _PATCHED_FAKE_KEY:
        return
    from moto.s3.models import FakeKey

    original = FakeKey.value

    def setter(self: Any, new_value: bytes) -> None:
        original.fset(self, new_value)  # type: ignore[misc]
        if _BLOBS is not None:
            _BLOBS.forget(self)

    FakeKey.value = property(original.fget, setter)  # type: ignore[method-assign,assignment]
    _PATCHED_FAKE_KEY = True


def _set_key_state(key: Any, state: dict[str, Any]) -> None:
    """Unpickling a FakeKey whose body is in the blob store."""
    digest = state.pop("__body_sha256__")
    if _BLOBS is None:
        raise RuntimeError("an S3 snapshot refers to object bodies but no blob store is open")
    state["value"] = _BLOBS.read(digest)
    key.__setstate__(state)
    _BLOBS.remember(key, digest)


# -- pickling ------------------------------------------------------------------------------------


def _rebuild_weak_values(items: dict[object, object]) -> weakref.WeakValueDictionary[object, object]:
    rebuilt: weakref.WeakValueDictionary[object, object] = weakref.WeakValueDictionary()
    rebuilt.update(items)
    return rebuilt


_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), _RLOCK_TYPE)


def _nothing() -> None:
    return None


def _rebuild_defaultdict(factory: Any, items: dict[object, object]) -> defaultdict[object, object]:
    return defaultdict(factory, items)


def _new_instance(cls: type) -> Any:
    return cls.__new__(cls)


def _set_defaultdict_state(obj: Any, state: tuple[Any, dict[str, Any]]) -> None:
    obj.default_factory, attributes = state
    obj.__dict__.update(attributes)


def _picklable_factory(factory: Any) -> Any:
    """A picklable stand-in for a ``defaultdict`` factory that is a lambda making an empty
    ``dict``/``list``/``set`` or an empty ``defaultdict`` (itself of such a factory); else None."""
    if getattr(factory, "__name__", "") != "<lambda>":
        return factory
    try:
        sample = factory()
    except Exception:
        return None
    if type(sample) in (dict, list, set) and not sample:
        return type(sample)
    if type(sample) is defaultdict and not sample:
        inner = _picklable_factory(sample.default_factory)
        return None if inner is None else functools.partial(defaultdict, inner)
    return None


class _Pickler(pickle.Pickler):
    """Pickles what moto's backends hold but pickle refuses.

    - Lambda indexes functions by ARN in a WeakValueDictionary; its values are the same objects
      the backend holds strongly, so it is rebuilt from its items.
    - ``defaultdict(lambda: {})`` (a local lambda) becomes ``defaultdict(dict)``, and
      ``defaultdict(lambda: defaultdict(dict))`` ``defaultdict(partial(defaultdict, dict))``;
      a ``defaultdict`` subclass with its own ``__init__`` is rebuilt without calling it.
    - Locks are recreated unlocked; threads (finished Step Functions executions keep theirs) become
      ``None``: only data survives a restart, never work in flight.
    - With a blob store, an S3 object's body is stored there and the pickle holds its digest.
    """

    def __init__(self, file: io.BytesIO, blobs: BlobStore | None = None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs = blobs

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, _LOCK_TYPES):
            return (type(obj) is _RLOCK_TYPE and threading.RLock) or threading.Lock, ()
        if isinstance(obj, threading.Thread):
            return _nothing, ()
        if isinstance(obj, weakref.WeakValueDictionary):
            return _rebuild_weak_values, (dict(obj.items()),)
        if isinstance(obj, defaultdict) and type(obj) is not defaultdict:
            # a subclass with its own __init__ (ssm's ParameterDict): pickle's default calls it
            # with the factory alone; rebuild it without __init__ instead
            factory = _picklable_factory(obj.default_factory)
            return (
                _new_instance,
                (type(obj),),
                (factory, dict(obj.__dict__)),
                None,
                iter(obj.items()),
                _set_defaultdict_state,
            )
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            factory = _picklable_factory(obj.default_factory)
            if factory is not None:
                return _rebuild_defaultdict, (factory, dict(obj))
        if self.blobs is not None and type(obj).__name__ == "FakeKey" and hasattr(obj, "_value_buffer"):
            state = {k: v for k, v in obj.__dict__.items() if k not in ("_value_buffer", "lock")}
            state["__body_sha256__"] = self.blobs.put(obj)
            return copyreg.__newobj__, (type(obj),), state, None, None, _set_key_state
        return NotImplemented


def _dumps(obj: object, blobs: BlobStore | None = None) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, blobs).dump(obj)
    return buf.getvalue()


def dump_backends(backend_dict: object, blobs: BlobStore | None = None) -> bytes:
    """One service's backends (every account and region that holds something), pickled."""
    snapshot = {
        account: dict(regions.items())
        for account, regions in list(backend_dict.items())  # type: ignore[attr-defined]
        if len(regions)  # untouched accounts have nothing to keep
    }
    return _dumps(snapshot, blobs)


def load_backends(backend_dict: object, data: bytes) -> dict[str, dict[str, object]]:
    """Put what :func:`dump_backends` wrote back into the service's backends."""
    snapshot: dict[str, dict[str, object]] = pickle.loads(data)
    for account, regions in snapshot.items():
        for region, backend in regions.items():
            backend_dict[account][region] = backend  # type: ignore[index]
    return snapshot


def _dir(state_dir: Path) -> Path:
    return state_dir / "moto"


def _blobs_for(state_dir: Path) -> BlobStore:
    global _BLOBS
    root = _dir(state_dir) / "s3-objects"
    if _BLOBS is None or _BLOBS.root != root:
        _BLOBS = BlobStore(root)
    return _BLOBS


def save_service(state_dir: Path, service: str) -> str:
    """Snapshot one moto service durably; 'saved', 'untouched' (never imported) or raises."""
    module_name, attr = SERVICES[service]
    if module_name not in sys.modules:
        return "untouched"  # never imported in this run: it holds no state (an older file stays valid)
    blobs = None
    if service == "s3":
        _watch_fake_key_values()
        blobs = _blobs_for(state_dir)
    backend_dict = getattr(sys.modules[module_name], attr)
    for attempt in range(5):
        try:
            data = dump_backends(backend_dict, blobs)
            break
        except RuntimeError as exc:  # another thread changed a dict while it was pickled
            if "changed size during iteration" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.001 * (attempt + 1))
    atomic_write(_dir(state_dir) / f"{service}.pickle", data)
    return "saved"


def save_moto(state_dir: Path) -> dict[str, str]:
    """Snapshot each service's backends that exist; returns service -> 'saved' | error text."""
    out: dict[str, str] = {}
    for service in SERVICES:
        try:
            result = save_service(state_dir, service)
            if result == "saved":
                out[service] = result
        except Exception as exc:  # a service that cannot be pickled is skipped, not fatal
            LOG.warning("cannot persist moto %s state: %s", service, exc)
            out[service] = f"skipped: {exc}"
    return out


def _reindex_buckets(s3_backends: object, snapshot: dict[str, dict[str, object]]) -> None:
    """moto finds a bucket's owner in ``s3_backends.bucket_accounts``, a global outside the
    per-account backends we pickle. Without it, CreateBucket on a restored name "succeeds" and
    replaces the restored bucket, objects and all."""
    index = s3_backends.bucket_accounts  # type: ignore[attr-defined]
    for account, regions in snapshot.items():
        for backend in regions.values():
            for name, bucket in backend.buckets.items():  # type: ignore[attr-defined]
                index[name] = (bucket.partition, account)


def _abort_running_executions(snapshot: dict[str, dict[str, object]]) -> int:
    """An execution that was running at a crash has no worker any more: say so, as AWS would
    for an execution stopped from outside (``ABORTED``), instead of ``RUNNING`` for ever."""
    from datetime import datetime

    aborted = 0
    for regions in snapshot.values():
        for backend in regions.values():
            executions = [
                e for sm in getattr(backend, "state_machines", []) for e in getattr(sm, "executions", [])
            ]
            for execution in executions:
                status = getattr(execution, "exec_status", None)
                if status is not None and getattr(status, "value", status) == "RUNNING":
                    from moto.stepfunctions.parser.api import ExecutionStatus

                    execution.exec_status = ExecutionStatus.ABORTED
                    execution.stop_date = datetime.now(tz=UTC)
                    execution.error = "States.Runtime"
                    execution.cause = "The local endpoint stopped while this execution was running."
                    aborted += 1
    return aborted


def restore_moto(state_dir: Path) -> dict[str, str]:
    """Load what ``save_service`` wrote; a file that fails to load is ignored (fresh state)."""
    out: dict[str, str] = {}
    source = _dir(state_dir)
    if not source.exists():
        return out
    stale = remove_stale_temporaries(source)
    if stale:
        LOG.info("removed %d temporary file(s) a crash left in %s", stale, source)
    for service, (module_name, attr) in SERVICES.items():
        path = source / f"{service}.pickle"
        if not path.exists():
            continue
        try:
            backend_dict = getattr(importlib.import_module(module_name), attr)
            if service == "s3":
                _watch_fake_key_values()
                blobs = _blobs_for(state_dir)
            snapshot = load_backends(backend_dict, path.read_bytes())
            if service == "s3":
                _reindex_buckets(backend_dict, snapshot)
                removed = blobs.collect_garbage()
                if removed:
                    LOG.info("removed %d S3 bodies no object refers to", removed)
            if service == "stepfunctions":
                aborted = _abort_running_executions(snapshot)
                if aborted:
                    LOG.info("%d Step Functions execution(s) running at the last stop: ABORTED", aborted)
            out[service] = "restored"
        except Exception as exc:
            LOG.warning("cannot restore moto %s state: %s", service, exc)
            out[service] = f"skipped: {exc}"
    return out


# -- the dispatch layer's hook -----------------------------------------------------------------


class Durability:
    """Makes a served mutating request's effect durable before its response leaves (see module doc)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.savers: dict[str, Callable[[], object]] = {
            service: (lambda service=service: save_service(state_dir, service)) for service in SERVICES
        }
        self._lock = threading.Lock()
        self._service_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._issued: dict[str, int] = defaultdict(int)
        self._saved: dict[str, int] = defaultdict(int)
        self.stats: dict[str, list[float]] = defaultdict(list)  # service -> snapshot seconds
        self.failures = 0
        self.requests: dict[str, int] = defaultdict(int)  # service -> mutating requests answered
        _blobs_for(state_dir)

    def register(self, service: str, saver: Callable[[], object]) -> None:
        """A provider's own state, saved by ``saver`` after a mutating request signed for ``service``."""
        self.savers[service] = saver

    def after(self, request: Any, status: int) -> None:
        """Called with every served request before its response is sent."""
        if status >= 500 or not is_mutating(request):
            return  # a failed request changed nothing that was acknowledged
        service = SIGNING_NAMES.get(signing_service(request))
        if service is not None:
            self.requests[service] += 1
            self.commit(service)

    def commit(self, service: str) -> None:
        """Durably save ``service``'s state as it is now (or later); shared by concurrent callers."""
        saver = self.savers.get(service)
        if saver is None:
            return
        with self._lock:
            self._issued[service] += 1
            ticket = self._issued[service]
        with self._service_locks[service]:
            if self._saved[service] >= ticket:
                return  # a snapshot taken after our mutation already covers it
            with self._lock:
                covered = self._issued[service]
            started = time.perf_counter()
            try:
                saver()
            except Exception:
                self.failures += 1
                LOG.exception("cannot make %s state durable", service)
                raise
            self.stats[service].append(time.perf_counter() - started)
            self._saved[service] = covered

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for service, times in self.stats.items():
            ordered = sorted(times)
            out[service] = {
                "requests": self.requests.get(service, 0),
                "snapshots": len(ordered),
                "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
                "max_ms": round(1000 * ordered[-1], 2),
                "total_ms": round(1000 * sum(ordered), 1),
            }
        return out
