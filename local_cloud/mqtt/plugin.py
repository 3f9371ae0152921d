"""Builds the broker's plugin (``identity_plugin.c`` + ``presence.c``) once per source and compiler.

The shared object is cached by the SHA-256 of its sources (the ``.c`` files and ``plugin_api.h``) (``MLOPS_EDGE_CACHE``, default
``~/.cache/mlops-edge``), written to a temporary name and renamed, so concurrent brokers (parallel
tests) never load a half-written file. Only a C compiler is needed: the plugin declares the few
mosquitto and OpenSSL functions it calls itself and resolves them in the mosquitto process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("identity_plugin.c")
#: Every file the build reads, in the order they are hashed; the ``.c`` ones are compiled.
SOURCES = (SOURCE, SOURCE.with_name("presence.c"), SOURCE.with_name("plugin_api.h"))
CACHE_ENV = "MLOPS_EDGE_CACHE"


class PluginBuildError(RuntimeError):
    """The identity plugin could not be built (no C compiler, or it failed)."""


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlops-edge"


def _compiler() -> str:
    for name in (os.environ.get("CC") or "", "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    raise PluginBuildError(
        "the local MQTT broker needs a C compiler to build its identity plugin "
        f"({SOURCE.name}: client id bound to the certificate, SUBSCRIBE checked): "
        "install one (`sudo apt-get install gcc libc6-dev`) and run again"
    )


def plugin_path() -> Path:
    """Path of the built plugin, building it first if this source has not been built yet."""
    hasher = hashlib.sha256()
    for path in SOURCES:
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest = hasher.hexdigest()[:16]
    target = _cache_dir() / f"mosquitto-identity-{digest}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler = _compiler()
    fd, tmp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    compiled = [str(path) for path in SOURCES if path.suffix == ".c"]
    cmd = [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(tmp), *compiled]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise PluginBuildError(
                f"building the MQTT identity plugin failed ({' '.join(cmd)}):\n{done.stderr.strip()}"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
