"""Greengrass IPC server: a Unix socket speaking eventstream-RPC, one handler per operation.

Each connection authenticates once (CONNECT payload ``{"authToken": SVCUID}``); every stream then
carries one operation (``operation`` header on its first message). Handlers run on the
connection's reader thread and answer through :class:`Stream`; streaming operations keep their
stream open and push events until either side terminates it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .codec import FrameError, Message, MessageFlag, MessageType, decode_all, rpc_frame
from .exceptions import IpcError, ServiceError

log = logging.getLogger(__name__)

NAMESPACE = "aws.greengrass#"
#: Bytes read from a component's socket at once (the buffer is kept per connection: memory per core counts).
RECV_BYTES = 64 * 1024
_CONNECT, _PING = int(MessageType.CONNECT), int(MessageType.PING)
_APPLICATION = (int(MessageType.APPLICATION_MESSAGE), int(MessageType.APPLICATION_ERROR))


class Stream:
    """One RPC stream (continuation) of a connection."""

    def __init__(self, conn: Connection, stream_id: int, operation: str) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.operation = operation
        self.closed = False
        self._on_close: list[Callable[[], None]] = []

    @property
    def component(self) -> str:
        return self.conn.component or ""

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the stream ends (client close, error, disconnect)."""
        self._on_close.append(callback)

    def respond(self, shape: str, body: dict[str, Any] | None = None, *, terminate: bool = True) -> None:
        """Send the operation's response; request/response operations terminate the stream."""
        flags = MessageFlag.TERMINATE_STREAM if terminate else MessageFlag.NONE
        self._send(MessageType.APPLICATION_MESSAGE, shape, body or {}, flags)
        if terminate:
            self._closed()

    def event(self, shape: str, body: dict[str, Any]) -> None:
        """Push one stream event (subscriptions)."""
        if not self.closed:
            self._send(MessageType.APPLICATION_MESSAGE, shape, body, MessageFlag.NONE)

    def error(self, exc: IpcError) -> None:
        """Answer with an error shape and end the stream."""
        body = {"message": exc.message}
        self._send(MessageType.APPLICATION_ERROR, exc.shape, body, MessageFlag.TERMINATE_STREAM)
        self._closed()

    def event_json(self, shape: str, payload: bytes) -> None:
        """Push one stream event whose JSON body the caller already encoded (hot paths)."""
        if not self.closed:
            self._send_raw(MessageType.APPLICATION_MESSAGE, shape, payload, MessageFlag.NONE)

    def _send(self, mtype: MessageType, shape: str, body: dict[str, Any], flags: int) -> None:
        self._send_raw(mtype, shape, json.dumps(body, separators=(",", ":")).encode(), flags)

    def _send_raw(self, mtype: MessageType, shape: str, payload: bytes, flags: int) -> None:
        self.conn.send(
            rpc_frame(mtype, stream_id=self.stream_id, flags=flags, model=NAMESPACE + shape, payload=payload)
        )

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.conn.streams.pop(self.stream_id, None)
        for callback in self._on_close:
            with contextlib.suppress(Exception):
                callback()


#: handler(stream, request body) -> None; raises IpcError for an error answer.
Handler = Callable[[Stream, dict[str, Any]], None]


class Connection:
    """One client socket: reader thread, serialized writes, its streams."""

    def __init__(self, server: IpcServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.component: str | None = None
        self.streams: dict[int, Stream] = {}
        self._write_lock = threading.Lock()
        self._alive = True

    def send(self, frame: bytes) -> None:
        if not self._alive:
            return
        try:
            with self._write_lock:
                self.sock.sendall(frame)
        except OSError:
            self.close()

    def serve(self) -> None:
        # one receive buffer for the connection's life: recv() would allocate (and for large reads
        # mmap) a fresh bytes object per read; frames are decoded in place from ``buffer``
        scratch = bytearray(RECV_BYTES)
        chunk = memoryview(scratch)
        buffer = bytearray()
        try:
            while self._alive:
                n = self.sock.recv_into(scratch)
                if not n:
                    break
                buffer += chunk[:n]
                for msg in decode_all(buffer):
                    self._on_message(msg)
        except (OSError, FrameError) as exc:
            log.debug("ipc connection of %s ended: %s", self.component, exc)
        finally:
            self.close()

    def close(self) -> None:
        if not self._alive:
            return
        self._alive = False
        for stream in list(self.streams.values()):
            stream._closed()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.server._forget(self)

    def _on_message(self, msg: Message) -> None:
        mtype = msg.headers.get(":message-type", 0)  # the int: no enum built per message
        if mtype == _CONNECT:
            self._on_connect(msg)
        elif mtype == _PING:
            self.send(rpc_frame(MessageType.PING_RESPONSE))
        elif mtype in _APPLICATION:
            if self.component is None:
                self.send(rpc_frame(MessageType.PROTOCOL_ERROR))
                self.close()
                return
            self._on_stream_message(msg)

    def _on_connect(self, msg: Message) -> None:
        try:
            token = json.loads(msg.payload or b"{}").get("authToken")
        except ValueError:
            token = None
        component = self.server.tokens.component_for(token)
        if component is None:
            log.warning("ipc connection refused: unknown auth token")
            # the client closes on a CONNECT_ACK without CONNECTION_ACCEPTED (AccessDeniedError)
            self.send(rpc_frame(MessageType.CONNECT_ACK, flags=MessageFlag.NONE))
            return
        self.component = component
        self.send(rpc_frame(MessageType.CONNECT_ACK, flags=MessageFlag.CONNECTION_ACCEPTED))

    def _on_stream_message(self, msg: Message) -> None:
        sid = msg.stream_id
        stream = self.streams.get(sid)
        if stream is None:
            operation = str(msg.headers.get("operation", ""))
            stream = Stream(self, sid, operation)
            self.streams[sid] = stream
            self._dispatch(stream, msg)
        elif msg.flags & MessageFlag.TERMINATE_STREAM:
            # client closed its end: acknowledge so its continuation completes, then clean up
            self.send(
                rpc_frame(MessageType.APPLICATION_MESSAGE, stream_id=sid, flags=MessageFlag.TERMINATE_STREAM)
            )
            stream._closed()

    def _dispatch(self, stream: Stream, msg: Message) -> None:
        name = (
            stream.operation[len(NAMESPACE) :] if stream.operation.startswith(NAMESPACE) else stream.operation
        )
        handler = self.server.handlers.get(name)
        try:
            if handler is None:
                raise ServiceError(f"operation {stream.operation!r} is not supported by this core")
            try:
                body = json.loads(msg.payload or b"{}")
            except ValueError as exc:
                raise ServiceError(f"request payload is not JSON: {exc}") from None
            handler(stream, body if isinstance(body, dict) else {})
        except IpcError as exc:
            stream.error(exc)
        except Exception as exc:
            log.exception("ipc handler %s failed", name)
            stream.error(ServiceError(f"{type(exc).__name__}: {exc}"))


class IpcServer:
    """Accepts component connections on ``socket_path``; ``handlers`` maps operation -> handler."""

    def __init__(self, socket_path: Path, tokens: Any, handlers: dict[str, Handler]) -> None:
        self.socket_path = Path(socket_path)
        self.tokens = tokens
        self.handlers = handlers
        self._sock: socket.socket | None = None
        self._conns: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        sock.listen(64)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="ipc-accept", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def disconnect(self, component: str) -> None:
        """Drop every connection of ``component`` (it was stopped or removed)."""
        with self._lock:
            conns = [c for c in self._conns if c.component == component]
        for conn in conns:
            conn.close()

    def _accept_loop(self) -> None:
        while self._sock is not None:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            conn = Connection(self, client)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=conn.serve, name="ipc-conn", daemon=True).start()

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
