"""AWS event-stream framing and the eventstream-RPC headers Greengrass IPC rides on.

Frame: total length (u32) | headers length (u32) | CRC32 of those 8 bytes | headers | payload |
CRC32 of everything before it. Header: name length (u8), name, type (u8), value. The RPC layer
adds ``:message-type``, ``:message-flags`` and ``:stream-id`` (int32 headers), ``:content-type``
and ``service-model-type`` (strings), and ``operation`` on the first message of a stream.
Written from awscrt's ``eventstream`` sources so the unmodified awsiotsdk client can talk to us.
"""

from __future__ import annotations

import binascii
import functools
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


_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PRELUDE = struct.Struct(">III")
_LENGTHS = struct.Struct(">II")
_INT32 = struct.Struct(">i")
_FIXED_STRUCTS = {code: struct.Struct(fmt) for code, fmt in _FIXED.items()}
_TYPES = tuple(HeaderType)  # by wire code: indexing is cheaper than HeaderType(code) per header


def _encode_header(name: str, value: Any, htype: HeaderType) -> bytes:
    raw_name = name.encode()
    out = _U8.pack(len(raw_name)) + raw_name + _U8.pack(htype)
    if htype in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return out
    if htype in _FIXED_STRUCTS:
        return out + _FIXED_STRUCTS[htype].pack(value)
    if htype == HeaderType.TIMESTAMP:
        return out + struct.pack(">q", int(value))
    if htype == HeaderType.UUID:
        return out + (value.bytes if isinstance(value, uuid.UUID) else bytes(value))
    data = value.encode() if isinstance(value, str) else bytes(value)
    return out + _U16.pack(len(data)) + data


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


def _frame(raw_headers: bytes, payload: bytes) -> bytes:
    """Prelude, headers, payload and CRC in one allocation (the CRC runs over the parts)."""
    total = PRELUDE + len(raw_headers) + len(payload) + 4
    lengths = _LENGTHS.pack(total, len(raw_headers))
    prelude_crc = binascii.crc32(lengths)
    prelude = lengths + _U32.pack(prelude_crc)
    crc = binascii.crc32(payload, binascii.crc32(raw_headers, binascii.crc32(prelude)))
    return b"".join((prelude, raw_headers, payload, _U32.pack(crc)))


def encode(
    headers: dict[str, Any], payload: bytes = b"", types: dict[str, HeaderType] | None = None
) -> bytes:
    """Encode one frame. Integers default to INT32 (what the RPC headers use)."""
    types = types or {}
    raw_headers = b"".join(_encode_header(k, v, types.get(k) or _infer_type(v)) for k, v in headers.items())
    return _frame(raw_headers, payload)


def _decode_headers(raw: memoryview | bytes) -> tuple[dict[str, Any], dict[str, HeaderType]]:
    headers: dict[str, Any] = {}
    types: dict[str, HeaderType] = {}
    i, end = 0, len(raw)
    try:
        while i < end:
            n = raw[i]
            name = str(raw[i + 1 : i + 1 + n], "utf-8")
            i += 1 + n
            htype = _TYPES[raw[i]]
            i += 1
            value: Any
            if htype is HeaderType.INT32:  # the RPC headers: the common case first
                (value,) = _INT32.unpack_from(raw, i)
                i += 4
            elif htype is HeaderType.STRING or htype is HeaderType.BYTE_BUF:
                (size,) = _U16.unpack_from(raw, i)
                data = raw[i + 2 : i + 2 + size]
                if len(data) != size:
                    raise FrameError("header value runs past the headers")
                value = str(data, "utf-8") if htype is HeaderType.STRING else bytes(data)
                i += 2 + size
            elif htype is HeaderType.BOOL_TRUE or htype is HeaderType.BOOL_FALSE:
                value = htype is HeaderType.BOOL_TRUE
            elif htype in _FIXED_STRUCTS:
                fixed = _FIXED_STRUCTS[htype]
                (value,) = fixed.unpack_from(raw, i)
                i += fixed.size
            elif htype is HeaderType.TIMESTAMP:
                (value,) = struct.unpack_from(">q", raw, i)
                i += 8
            else:  # UUID
                data = bytes(raw[i : i + 16])
                if len(data) != 16:
                    raise FrameError("header value runs past the headers")
                value = uuid.UUID(bytes=data)
                i += 16
            headers[name] = value
            types[name] = htype
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed headers: {exc}") from None
    if i != end:
        raise FrameError("header value runs past the headers")
    return headers, types


def _decode_at(buffer: bytearray, view: memoryview, start: int) -> tuple[Message | None, int]:
    """Decode the frame at ``start`` of ``buffer`` without copying it; (None, start) if incomplete."""
    available = len(buffer) - start
    if available < PRELUDE:
        return None, start
    total, headers_len, prelude_crc = _PRELUDE.unpack_from(buffer, start)
    if binascii.crc32(view[start : start + 8]) != prelude_crc:
        raise FrameError("prelude CRC mismatch")
    if total > MAX_FRAME or total < PRELUDE + 4 or headers_len > total - PRELUDE - 4:
        raise FrameError(f"bad frame length {total}")
    if available < total:
        return None, start
    end = start + total
    (crc,) = _U32.unpack_from(buffer, end - 4)
    if binascii.crc32(view[start : end - 4]) != crc:
        raise FrameError("message CRC mismatch")
    body = start + PRELUDE + headers_len
    headers, types = _decode_headers(view[start + PRELUDE : body])
    return Message(headers=headers, payload=bytes(view[body : end - 4]), types=types), end


def decode_all(buffer: bytearray) -> list[Message]:
    """Decode and remove every complete frame at the front of ``buffer`` (a partial one stays).

    One pass over the buffer, one ``del`` at the end: a read that brought several frames does
    not shift the rest of the buffer once per frame, and no frame is copied before decoding.
    """
    messages: list[Message] = []
    start = 0
    with memoryview(buffer) as view:
        while True:
            msg, start = _decode_at(buffer, view, start)
            if msg is None:
                break
            messages.append(msg)
    if start:
        del buffer[:start]
    return messages


def decode_from(buffer: bytearray) -> Message | None:
    """Decode and remove one frame from the front of ``buffer``; None if it is not complete yet."""
    with memoryview(buffer) as view:
        msg, end = _decode_at(buffer, view, 0)
    if msg is not None:
        del buffer[:end]
    return msg


_RPC_INT_NAMES = (":message-type", ":message-flags", ":stream-id")
_RPC_INT_PREFIXES = tuple(_encode_header(n, 0, HeaderType.INT32)[:-4] for n in _RPC_INT_NAMES)


@functools.lru_cache(maxsize=256)
def _model_headers(model: str) -> bytes:
    """The ``:content-type`` and ``service-model-type`` headers of one shape, encoded once."""
    return _encode_header(":content-type", "application/json", HeaderType.STRING) + _encode_header(
        "service-model-type", model, HeaderType.STRING
    )


def rpc_frame(
    message_type: MessageType,
    *,
    stream_id: int = 0,
    flags: int = MessageFlag.NONE,
    model: str | None = None,
    payload: bytes = b"",
    extra: dict[str, Any] | None = None,
) -> bytes:
    """An eventstream-RPC frame; ``model`` sets ``service-model-type`` + JSON content type.

    The same headers, in the same order, as :func:`encode` of them would write; the constant
    parts (names, the content type, each shape's name) are encoded once, not per message.
    """
    mt, fl, sid = _RPC_INT_PREFIXES
    parts = [mt, _INT32.pack(int(message_type)), fl, _INT32.pack(flags), sid, _INT32.pack(stream_id)]
    if model is not None:
        parts.append(_model_headers(model))
    for name, value in (extra or {}).items():
        parts.append(_encode_header(name, value, _infer_type(value)))
    return _frame(b"".join(parts), payload)
