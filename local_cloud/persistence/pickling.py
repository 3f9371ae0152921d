"""Pickling moto's backends: what pickle refuses (locks, threads, lambda factories), S3 bodies by digest."""

from __future__ import annotations

import copyreg
import functools
import io
import pickle
import threading
import weakref
from collections import defaultdict
from typing import Any

from local_cloud.persistence.s3_bodies import BlobStore, _set_key_state


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
