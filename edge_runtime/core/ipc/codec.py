"""AWS event-stream framing and the eventstream-RPC headers Greengrass IPC rides on.

Frame: total length (u32) | headers length (u32) | CRC32 of those 8 bytes | headers | payload |
CRC32 of everything before it. Header: name length (u8), name, type (u8), value. The RPC layer
adds ``:message-type``, ``:message-flags`` and ``:stream-id`` (int32 headers), ``:content-type``
and ``service-model-type`` (strings), and ``operation`` on the first message of a stream.
Written from awscrt's ``eventstream`` sources so the unmodified awsiotsdk client can talk to us.
"""

from __future__ import annotations

import binascii
import struct
import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class HeaderType(IntEnum):
    """Header value types (awscrt.eventstream.HeaderType)."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


class MessageType(IntEnum):
    """eventstream-RPC message types (awscrt.eventstream.rpc.MessageType)."""

    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


class MessageFlag:
    """eventstream-RPC message flags."""

    NONE = 0
    CONNECTION_ACCEPTED = 0x1
    TERMINATE_STREAM = 0x2


class FrameError(ValueError):
    """A frame that cannot be decoded (bad length or CRC): the connection must be dropped."""


PRELUDE = 12
MAX_FRAME = 16 * 1024 * 1024

_FIXED = {HeaderType.BYTE: ">b", HeaderType.INT16: ">h", HeaderType.INT32: ">i", HeaderType.INT64: ">q"}


@dataclass
class Message:
    """One decoded frame: headers by name (typed values kept as Python values) and payload."""

    headers: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""
    types: dict[str, HeaderType] = field(default_factory=dict)

    @property
    def message_type(self) -> MessageType:
        return MessageType(self.headers.get(":message-type", 0))

    @property
    def flags(self) -> int:
        return int(self.headers.get(":message-flags", 0))

    @property
    def stream_id(self) -> int:
        return int(self.headers.get(":stream-id", 0))


def _encode_header(name: str, value: Any, htype: HeaderType) -> bytes:
    raw_name = name.encode()
    out = struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">B", htype)
    if htype in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return out
    if htype in _FIXED:
        return out + struct.pack(_FIXED[htype], value)
    if htype == HeaderType.TIMESTAMP:
        return out + struct.pack(">q", int(value))
    if htype == HeaderType.UUID:
        return out + (value.bytes if isinstance(value, uuid.UUID) else bytes(value))
    data = value.encode() if isinstance(value, str) else bytes(value)
    return out + struct.pack(">H", len(data)) + data


def _infer_type(value: Any) -> HeaderType:
    if isinstance(value, bool):
        return HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE
    if isinstance(value, int):
        return HeaderType.INT32
    if isinstance(value, bytes | bytearray):
        return HeaderType.BYTE_BUF
    if isinstance(value, uuid.UUID):
        return HeaderType.UUID
    return HeaderType.STRING


def encode(
    headers: dict[str, Any], payload: bytes = b"", types: dict[str, HeaderType] | None = None
) -> bytes:
    """Encode one frame. Integers default to INT32 (what the RPC headers use)."""
    types = types or {}
    raw_headers = b"".join(_encode_header(k, v, types.get(k) or _infer_type(v)) for k, v in headers.items())
    total = PRELUDE + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _decode_headers(raw: bytes) -> tuple[dict[str, Any], dict[str, HeaderType]]:
    headers: dict[str, Any] = {}
    types: dict[str, HeaderType] = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        name = raw[i + 1 : i + 1 + n].decode()
        i += 1 + n
        htype = HeaderType(raw[i])
        i += 1
        value: Any
        if htype == HeaderType.BOOL_TRUE:
            value = True
        elif htype == HeaderType.BOOL_FALSE:
            value = False
        elif htype in _FIXED:
            fmt = _FIXED[htype]
            size = struct.calcsize(fmt)
            (value,) = struct.unpack(fmt, raw[i : i + size])
            i += size
        elif htype == HeaderType.TIMESTAMP:
            (value,) = struct.unpack(">q", raw[i : i + 8])
            i += 8
        elif htype == HeaderType.UUID:
            value = uuid.UUID(bytes=raw[i : i + 16])
            i += 16
        else:
            (size,) = struct.unpack(">H", raw[i : i + 2])
            data = raw[i + 2 : i + 2 + size]
            value = data.decode() if htype == HeaderType.STRING else bytes(data)
            i += 2 + size
        headers[name] = value
        types[name] = htype
    return headers, types


def decode_from(buffer: bytearray) -> Message | None:
    """Decode and remove one frame from the front of ``buffer``; None if it is not complete yet."""
    if len(buffer) < PRELUDE:
        return None
    total, headers_len = struct.unpack(">II", buffer[:8])
    (prelude_crc,) = struct.unpack(">I", buffer[8:12])
    if binascii.crc32(bytes(buffer[:8])) != prelude_crc:
        raise FrameError("prelude CRC mismatch")
    if total > MAX_FRAME or total < PRELUDE + 4 or headers_len > total - PRELUDE - 4:
        raise FrameError(f"bad frame length {total}")
    if len(buffer) < total:
        return None
    frame = bytes(buffer[:total])
    del buffer[:total]
    (crc,) = struct.unpack(">I", frame[-4:])
    if binascii.crc32(frame[:-4]) != crc:
        raise FrameError("message CRC mismatch")
    headers, types = _decode_headers(frame[PRELUDE : PRELUDE + headers_len])
    return Message(headers=headers, payload=frame[PRELUDE + headers_len : -4], types=types)


def rpc_frame(
    message_type: MessageType,
    *,
    stream_id: int = 0,
    flags: int = MessageFlag.NONE,
    model: str | None = None,
    payload: bytes = b"",
    extra: dict[str, Any] | None = None,
) -> bytes:
    """An eventstream-RPC frame; ``model`` sets ``service-model-type`` + JSON content type."""
    headers: dict[str, Any] = {
        ":message-type": int(message_type),
        ":message-flags": flags,
        ":stream-id": stream_id,
    }
    if model is not None:
        headers[":content-type"] = "application/json"
        headers["service-model-type"] = model
    headers.update(extra or {})
    return encode(headers, payload)
