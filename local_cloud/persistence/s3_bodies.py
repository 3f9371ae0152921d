"""S3 object bodies, content addressed: each written once under ``<state>/moto/s3-objects/<sha256>``."""

from __future__ import annotations

import hashlib
import threading
import weakref
from pathlib import Path
from typing import Any

from local_cloud.persistence.files import _TMP_SUFFIX, atomic_write


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


def moto_dir(state_dir: Path) -> Path:
    return state_dir / "moto"


def blobs_for(state_dir: Path) -> BlobStore:
    global _BLOBS
    root = moto_dir(state_dir) / "s3-objects"
    if _BLOBS is None or _BLOBS.root != root:
        _BLOBS = BlobStore(root)
    return _BLOBS
