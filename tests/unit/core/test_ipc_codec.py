"""The eventstream codec's in-place decoding and cached RPC headers, against the plain encoder.

The server decodes frames without copying them (``decode_all`` over a ``memoryview``) and writes
RPC frames from pre-encoded header parts; both must read and write exactly what the generic
:func:`encode` does, however the bytes arrive (one byte at a time, several frames in one read).
"""

from __future__ import annotations

import binascii
import struct
import uuid

import pytest

from edge_runtime.core.ipc import Authorizer, UnauthorizedError
from edge_runtime.core.ipc.codec import (
    FrameError,
    HeaderType,
    MessageFlag,
    MessageType,
    decode_all,
    decode_from,
    encode,
    rpc_frame,
)

EVERY_TYPE = {
    "t": True,
    "f": False,
    "b": 7,
    "h": -300,
    "i": 70000,
    "q": 1 << 40,
    "buf": b"\x00\xff",
    "s": "héllo",
    "ts": 1700000000000,
    "u": uuid.UUID(int=12345),
}
TYPES = {
    "b": HeaderType.BYTE,
    "h": HeaderType.INT16,
    "q": HeaderType.INT64,
    "ts": HeaderType.TIMESTAMP,
}


def _frames() -> list[bytes]:
    return [
        encode(EVERY_TYPE, b'{"a":1}', TYPES),
        rpc_frame(MessageType.PING, stream_id=3),
        rpc_frame(
            MessageType.APPLICATION_MESSAGE,
            stream_id=9,
            flags=MessageFlag.TERMINATE_STREAM,
            model="aws.greengrass#PublishToIoTCoreRequest",
            payload=b"x" * 70_000,
            extra={"operation": "aws.greengrass#PublishToIoTCore"},
        ),
    ]


def test_rpc_frame_is_what_the_generic_encoder_writes() -> None:
    headers = {
        ":message-type": 0,
        ":message-flags": 2,
        ":stream-id": 9,
        ":content-type": "application/json",
        "service-model-type": "aws.greengrass#X",
        "operation": "aws.greengrass#Y",
    }
    expected = encode(headers, b"{}")
    frame = rpc_frame(
        MessageType.APPLICATION_MESSAGE,
        stream_id=9,
        flags=MessageFlag.TERMINATE_STREAM,
        model="aws.greengrass#X",
        payload=b"{}",
        extra={"operation": "aws.greengrass#Y"},
    )
    assert frame == expected
    assert rpc_frame(MessageType.PING) != rpc_frame(MessageType.PING_RESPONSE)


def test_every_header_type_round_trips() -> None:
    msg = decode_from(bytearray(_frames()[0]))
    assert msg is not None and msg.headers == EVERY_TYPE and msg.payload == b'{"a":1}'
    assert msg.types["q"] is HeaderType.INT64 and msg.types["s"] is HeaderType.STRING


@pytest.mark.parametrize("step", [1, 5, 12, 4096, 1 << 20])
def test_fragmented_reads_decode_the_same_frames(step: int) -> None:
    """Bytes arriving in pieces of any size give the same messages, none early, none twice."""
    stream = b"".join(_frames())
    expected = [decode_from(bytearray(f)) for f in _frames()]
    buffer, got = bytearray(), []
    for i in range(0, len(stream), step):
        buffer += stream[i : i + step]
        got += decode_all(buffer)
    assert [(m.headers, m.payload) for m in got] == [(m.headers, m.payload) for m in expected]
    assert buffer == bytearray()


def test_a_partial_frame_stays_in_the_buffer() -> None:
    first, second = _frames()[:2]
    buffer = bytearray(first + second[:7])
    assert len(decode_all(buffer)) == 1
    assert buffer == bytearray(second[:7])
    assert decode_all(buffer) == [] and decode_from(buffer) is None


def _corrupt(frame: bytes, at: int) -> bytearray:
    data = bytearray(frame)
    data[at] ^= 0x01
    return data


def test_corruption_is_a_frame_error() -> None:
    frame = _frames()[0]
    with pytest.raises(FrameError, match="prelude CRC"):
        decode_all(_corrupt(frame, 2))
    with pytest.raises(FrameError, match="message CRC"):
        decode_all(_corrupt(frame, 20))
    # a header length that runs past the headers, with valid CRCs: refused, not an IndexError
    headers = struct.pack(">B", 1) + b"s" + struct.pack(">BH", HeaderType.STRING, 500) + b"ab"
    total = 12 + len(headers) + 4
    prelude = struct.pack(">II", total, len(headers))
    body = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers
    with pytest.raises(FrameError, match="headers"):
        decode_all(bytearray(body + struct.pack(">I", binascii.crc32(body))))


def test_authorizer_remembers_decisions_until_the_policies_change() -> None:
    policies = {"svc": {"p": {"operations": ["op"], "resources": ["a/{iot:thingName}"]}}}
    reads: list[str] = []
    watchers: dict[str, list] = {}

    def read(component: str) -> dict:
        reads.append(component)
        return policies

    auth = Authorizer(read, "dev", watch=lambda c, cb: watchers.setdefault(c, []).append(cb))
    for _ in range(3):
        auth.check("comp", "svc", "op", "a/dev")
    assert reads == ["comp"]
    with pytest.raises(UnauthorizedError):
        auth.check("comp", "svc", "op", "a/other")
    policies["svc"]["p"]["resources"] = ["a/other"]
    for callback in watchers["comp"]:
        callback()
    auth.check("comp", "svc", "op", "a/other")  # the new policy is read
    with pytest.raises(UnauthorizedError):
        auth.check("comp", "svc", "op", "a/dev")  # and the old grant is gone
    assert len(watchers["comp"]) == 1  # watched once per component
