"""pipeline.archive: the same entries give the same bytes, whatever the order, process or machine state."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from pipeline.archive import deterministic_zip

REPO = Path(__file__).resolve().parents[3]

ENTRIES = [
    ("pkg/b.py", b"print('b')\n"),
    ("pkg/a.py", b"print('a')\n"),
    ("README.txt", b"read me\n"),
    ("pkg/sub/data.json", b'{"k": [1, 2, 3]}'),
]


def _text(seed: int = 1) -> bytes:
    """Compressible text whose deflate size differs between levels 6 and 9."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 9))) for _ in range(300)]
    return " ".join(rng.choice(words) for _ in range(20_000)).encode()


def _raw_deflate(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def test_entry_order_does_not_matter() -> None:
    assert deterministic_zip(ENTRIES) == deterministic_zip(reversed(ENTRIES))


def test_round_trip_sorted_with_fixed_metadata() -> None:
    with zipfile.ZipFile(io.BytesIO(deterministic_zip(ENTRIES))) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(name for name, _ in ENTRIES)
        assert {i.filename: zf.read(i) for i in infos} == dict(ENTRIES)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr == 0o644 << 16
        assert info.create_system == 3
        assert info.compress_type == zipfile.ZIP_DEFLATED


def test_deflate_level_is_zlibs_default() -> None:
    """The level is part of the bytes: published artifacts (and their versions) depend on it."""
    data = _text()
    assert len(_raw_deflate(data, 9)) != len(_raw_deflate(data, 6)), "the sample must tell the levels apart"
    (info,) = zipfile.ZipFile(io.BytesIO(deterministic_zip([("t.txt", data)]))).infolist()
    assert info.compress_size == len(_raw_deflate(data, zlib.Z_DEFAULT_COMPRESSION))


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"pkg/a\.py"):
        deterministic_zip([*ENTRIES, ("pkg/a.py", b"other")])


def test_bytes_are_reproducible_in_another_process() -> None:
    """Another interpreter, hash seed, umask and time zone: still the same bytes."""
    code = (
        "import sys, os; os.umask(0o077)\n"
        "from pipeline.archive import deterministic_zip\n"
        f"sys.stdout.buffer.write(deterministic_zip({ENTRIES!r}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Kiritimati", "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=60)
    assert child.stdout == deterministic_zip(ENTRIES)
