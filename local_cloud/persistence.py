"""Best-effort persistence of moto's in-memory state across endpoint restarts.

moto keeps every backend in memory. We pickle the per-region backends of the services the pipeline
uses when the endpoint stops and load them when it starts. Each service is pickled on its own, so a
service whose state cannot be pickled (e.g. a running Step Functions execution holds a thread) is
skipped and logged instead of losing everything. Greengrass state is persisted separately, on
every change, by its provider.
"""

from __future__ import annotations

import importlib
import io
import logging
import pickle
import sys
import threading
import weakref
from collections import defaultdict
from pathlib import Path

LOG = logging.getLogger(__name__)

# service -> (module, BackendDict attribute)
SERVICES: dict[str, tuple[str, str]] = {
    "s3": ("moto.s3.models", "s3_backends"),
    "iam": ("moto.iam.models", "iam_backends"),
    "iot": ("moto.iot.models", "iot_backends"),
    "lambda": ("moto.awslambda_simple.models", "lambda_simple_backends"),
    "logs": ("moto.logs.models", "logs_backends"),
    "sagemaker": ("moto.sagemaker.models", "sagemaker_backends"),
    "stepfunctions": ("moto.stepfunctions.parser.models", "stepfunctions_parser_backends"),
    # resources CloudFormation stacks make (the stacks themselves: services/cloudformation)
    "secretsmanager": ("moto.secretsmanager.models", "secretsmanager_backends"),
    "events": ("moto.events.models", "events_backends"),
    "ecr": ("moto.ecr.models", "ecr_backends"),  # images that stand in for a stack's image assets
}


def _rebuild_weak_values(items: dict[object, object]) -> weakref.WeakValueDictionary[object, object]:
    rebuilt: weakref.WeakValueDictionary[object, object] = weakref.WeakValueDictionary()
    rebuilt.update(items)
    return rebuilt


_RLOCK_TYPE = type(threading.RLock())
_LOCK_TYPES = (type(threading.Lock()), _RLOCK_TYPE)


def _nothing() -> None:
    return None


def _rebuild_defaultdict(factory: type, items: dict[object, object]) -> defaultdict[object, object]:
    return defaultdict(factory, items)


class _Pickler(pickle.Pickler):
    """Pickles what moto's backends hold but pickle refuses.

    - Lambda indexes functions by ARN in a WeakValueDictionary; its values are the same objects
      the backend holds strongly, so it is rebuilt from its items.
    - ``defaultdict(lambda: {})`` (a local lambda) becomes ``defaultdict(dict)``, same behaviour.
    - Locks are recreated unlocked; threads (finished Step Functions executions keep theirs) become
      ``None``: only data survives a restart, never work in flight.
    """

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, _LOCK_TYPES):
            return (type(obj) is _RLOCK_TYPE and threading.RLock) or threading.Lock, ()
        if isinstance(obj, threading.Thread):
            return _nothing, ()
        if isinstance(obj, weakref.WeakValueDictionary):
            return _rebuild_weak_values, (dict(obj.items()),)
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            sample = obj.default_factory()  # type: ignore[misc]
            if type(sample) in (dict, list, set) and not sample:
                return _rebuild_defaultdict, (type(sample), dict(obj))
        return NotImplemented


def _dumps(obj: object) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def dump_backends(backend_dict: object) -> bytes:
    """One service's backends (every account and region that holds something), pickled."""
    snapshot = {
        account: dict(regions.items())
        for account, regions in backend_dict.items()  # type: ignore[attr-defined]
        if len(regions)  # untouched accounts have nothing to keep
    }
    return _dumps(snapshot)


def load_backends(backend_dict: object, data: bytes) -> dict[str, dict[str, object]]:
    """Put what :func:`dump_backends` wrote back into the service's backends."""
    snapshot: dict[str, dict[str, object]] = pickle.loads(data)
    for account, regions in snapshot.items():
        for region, backend in regions.items():
            backend_dict[account][region] = backend  # type: ignore[index]
    return snapshot


def _dir(state_dir: Path) -> Path:
    return state_dir / "moto"


def save_moto(state_dir: Path) -> dict[str, str]:
    """Pickle each service's backends that exist; returns service -> 'saved' | error text."""
    out: dict[str, str] = {}
    target = _dir(state_dir)
    target.mkdir(parents=True, exist_ok=True)
    for service, (module_name, attr) in SERVICES.items():
        if module_name not in sys.modules:
            continue  # never imported in this run: it holds no state (an older file stays valid)
        try:
            data = dump_backends(getattr(sys.modules[module_name], attr))
            (target / f"{service}.pickle").write_bytes(data)
            out[service] = "saved"
        except Exception as exc:  # a service that cannot be pickled is skipped, not fatal
            LOG.warning("cannot persist moto %s state: %s", service, exc)
            (target / f"{service}.pickle").unlink(missing_ok=True)
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


def restore_moto(state_dir: Path) -> dict[str, str]:
    """Load what ``save_moto`` wrote; a file that fails to load is ignored (fresh state)."""
    out: dict[str, str] = {}
    source = _dir(state_dir)
    if not source.exists():
        return out
    for service, (module_name, attr) in SERVICES.items():
        path = source / f"{service}.pickle"
        if not path.exists():
            continue
        try:
            backend_dict = getattr(importlib.import_module(module_name), attr)
            snapshot = load_backends(backend_dict, path.read_bytes())
            if service == "s3":
                _reindex_buckets(backend_dict, snapshot)
            out[service] = "restored"
        except Exception as exc:
            LOG.warning("cannot restore moto %s state: %s", service, exc)
            out[service] = f"skipped: {exc}"
    return out
