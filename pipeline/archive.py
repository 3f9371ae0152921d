"""Zip archives whose bytes depend only on their contents.

Why: a component version is a hash of its artifact and a Lambda update is skipped when the code's
digest is unchanged, so the same files must always give the same bytes — whatever the files'
timestamps, the order they were found in, the umask or the machine that zipped them.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from collections.abc import Iterable

__all__ = ["deterministic_zip"]

#: The earliest date a zip entry can carry: stands for "no timestamp".
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_UNIX = 3  # ZipInfo.create_system: the mode bits mean the same on every platform


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """Zip ``(arcname, data)`` pairs so identical inputs always give identical bytes.

    Entries are written sorted by name with a fixed date and ``rw-r--r--`` permissions, so neither
    the order of ``entries`` nor anything about the files they came from reaches the archive.
    Deflate runs at zlib's default level: a ``ZipInfo`` carries no level of its own, and changing
    the level would change every published artifact's bytes, hence every inference version.
    A name given twice is refused: a zip with duplicate names unpacks differently by tool.
    """
    ordered = sorted(entries)
    duplicates = sorted(name for name, count in Counter(n for n, _ in ordered).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate zip entries: {', '.join(duplicates)}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in ordered:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            zf.writestr(info, data)
    return buf.getvalue()
