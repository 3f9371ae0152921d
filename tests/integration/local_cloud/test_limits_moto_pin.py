"""The Step Functions limit patches are pinned to moto 5.2.5: this fails loudly if moto's ASL
interpreter moves (another version, or a patched method whose source no longer reads as expected).

Runs in this process without applying the patches (other tests may use moto in-process); the
endpoint applies them at start-up and the other test_limits_* tests exercise them.
"""

from __future__ import annotations

import pytest

from local_cloud.services.stepfunctions import limits

pytestmark = pytest.mark.integration


def test_moto_is_the_version_the_patches_were_written_for() -> None:
    limits.verify()  # raises MotoInternalsChanged, naming what moved


def test_verify_names_a_moved_internal(monkeypatch: pytest.MonkeyPatch) -> None:
    key = next(iter(limits.FINGERPRINTS))
    monkeypatch.setitem(limits.FINGERPRINTS, key, ("a line moto never had",))
    with pytest.raises(limits.MotoInternalsChanged, match="a line moto never had"):
        limits.verify()


def test_verify_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits.metadata, "version", lambda name: "5.2.6")
    with pytest.raises(limits.MotoInternalsChanged, match=r"found 5\.2\.6"):
        limits.verify()


def test_payload_size_is_compact_utf8_json() -> None:
    assert limits.payload_size({"a": 1, "b": [1, 2]}) == len('{"a":1,"b":[1,2]}')
    assert limits.payload_size({"a": "\u00e9"}) == len('{"a":"\u00e9"}'.encode())  # 2 bytes, not \\u00e9
    assert limits.payload_size("text") == len('"text"')
    assert limits.within_quota("x" * (limits.MAX_PAYLOAD_BYTES - 2))  # exactly 262,144 bytes
    assert not limits.within_quota("x" * (limits.MAX_PAYLOAD_BYTES - 1))
