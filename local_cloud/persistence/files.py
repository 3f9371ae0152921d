"""Durable files: atomic replace (temporary file, fsync, rename, fsync of the directory)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

LOG = logging.getLogger(__name__)

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
