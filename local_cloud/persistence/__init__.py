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

The package: :mod:`.mutations` (which requests count as writes), :mod:`.files` (atomic, fsync-ed
files), :mod:`.s3_bodies` (the content-addressed body store), :mod:`.pickling` (what moto's backends
hold that pickle refuses), :mod:`.moto_state` (per-service snapshots, restore) and
:mod:`.durability` (the dispatch layer's hook, group commit).
"""

from __future__ import annotations

from local_cloud.persistence.durability import Durability
from local_cloud.persistence.files import atomic_write, remove_stale_temporaries
from local_cloud.persistence.moto_state import SERVICES, restore_moto, save_moto, save_service
from local_cloud.persistence.mutations import SIGNING_NAMES, is_mutating, operation_name, signing_service
from local_cloud.persistence.pickling import (
    _new_instance,
    _nothing,
    _rebuild_defaultdict,
    _rebuild_weak_values,
    _set_defaultdict_state,
    dump_backends,
    load_backends,
)
from local_cloud.persistence.s3_bodies import BlobStore, _set_key_state

# Snapshots written before the split name their rebuild functions ``local_cloud.persistence.<name>``
# (pickle stores functions by module and name): they stay importable from here so those load.
__all__ = [
    "SERVICES",
    "SIGNING_NAMES",
    "BlobStore",
    "Durability",
    "_new_instance",
    "_nothing",
    "_rebuild_defaultdict",
    "_rebuild_weak_values",
    "_set_defaultdict_state",
    "_set_key_state",
    "atomic_write",
    "dump_backends",
    "is_mutating",
    "load_backends",
    "operation_name",
    "remove_stale_temporaries",
    "restore_moto",
    "save_moto",
    "save_service",
    "signing_service",
]
