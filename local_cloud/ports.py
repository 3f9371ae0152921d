"""Loopback ports: ephemeral ones for child processes that cannot report the port they bound, and
the check that a fixed one (`mlops-edge local up`'s endpoint and broker ports) is free."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (tiny race; callers retry on bind failure)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now. Bound as werkzeug and mosquitto
    bind (with SO_REUSEADDR), so a closed connection's TIME_WAIT does not count as taken, while a
    listening socket of any other process does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, alive: object = None) -> bool:
    """Poll until something accepts TCP connections on 127.0.0.1:port, or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False
