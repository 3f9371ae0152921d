"""The SageMaker training program and its deterministic ``sourcedir.tar.gz``.

``train.py`` is the program SageMaker (or the local cloud) runs in script mode; it is kept
self-contained. ``source_tarball()`` packs it the way SageMaker's ``sagemaker_submit_directory``
expects, byte-for-byte reproducible so the same source always yields the same S3 object.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

__all__ = ["PROGRAM", "TRAIN_SCRIPT", "source_tarball"]

PROGRAM = "train.py"
TRAIN_SCRIPT = Path(__file__).with_name(PROGRAM)
_FIXED_MTIME = 315532800  # 1980-01-01: tar and gzip headers must not carry the build time


def source_tarball() -> bytes:
    """Return sourcedir.tar.gz holding ``train.py`` at its root, identical for identical source."""
    data = TRAIN_SCRIPT.read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(PROGRAM)
        info.size = len(data)
        info.mtime = _FIXED_MTIME
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=_FIXED_MTIME) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()
