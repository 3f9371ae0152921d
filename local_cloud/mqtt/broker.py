"""mosquitto as a child process: generated config, TLS from the local CA, per-thing policy.

The policy is the local form of an IoT policy scoped by ``${iot:Connection.Thing.ThingName}``:
- connect: a client's id must be its certificate's identity (CN = thing name), as
  ``iot:Connect`` on ``client/${iot:Connection.Thing.ThingName}``; the pipeline's identity may also
  use ids starting with :data:`TOOL_CLIENT_PREFIX` (the verifier's policy on AWS). Refused in
  CONNACK, so no one can take over another client's session;
- subscribe: a device only to filters under ``edge/<thing>/`` and ``$aws/things/<thing>/``, refused
  in SUBACK otherwise (``#`` included);
- publish/receive: only its own topics (the ACL file).
Privileged identities (the pipeline, the control plane) may touch everything. Connect and subscribe
are checked by a small plugin (``identity_plugin.c``; mosquitto 2.0's configuration cannot express
either, see ``README.md``), publish and receive by the ACL file. New devices are added by rewriting
the ACL file and sending SIGHUP, which makes mosquitto reload it without dropping connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from local_cloud.mqtt.ca import CertificateAuthority, IssuedCertificate
from local_cloud.mqtt.plugin import plugin_path
from local_cloud.ports import free_port, port_free, wait_for_port

PIPELINE_IDENTITY = "mlops-edge-pipeline"
CONTROL_PLANE_IDENTITY = "mlops-edge-control-plane"
PRIVILEGED_IDENTITIES = (PIPELINE_IDENTITY, CONTROL_PLANE_IDENTITY)
#: Client ids the pipeline's identity may use besides its own name: the prefix the verifier's IoT
#: policy allows on AWS (``infra/verifier.py``), which ``pipeline.mqtt`` clients use by default.
TOOL_CLIENT_PREFIX = "mlops-edge-tool-"
#: Topic-filter prefixes a device may subscribe to (``%u``: its thing name).
DEVICE_TOPIC_PREFIXES = ("edge/%u/", "$aws/things/%u/")


#: Connections the broker must be able to hold at once (1,000 job clients, a fleet, the tools):
#: each is a file descriptor, and mosquitto 2.0 neither raises its own limit nor caps connections
#: (``max_connections -1``), so a soft ``RLIMIT_NOFILE`` of 1024 (a common default) would make it
#: refuse the 1,000th-odd client with "Too many open files".
WANTED_OPEN_FILES = 8192


def raise_open_files_limit(pid: int = 0, wanted: int = WANTED_OPEN_FILES) -> int:
    """Raise a process's (``pid``; 0 = this one) soft open-files limit towards ``wanted``, up to
    the hard limit (no privilege needed); returns the soft limit it has afterwards."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return int(soft)


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        raise RuntimeError("mosquitto is not installed: run scripts/setup")
    return found


class BrokerPortInUse(RuntimeError):
    """The fixed port asked for is held by another process: a fixed port is never swapped for
    another, since clients were told that one (``mlops-edge local up --mqtt-port``)."""

    def __init__(self, port: int) -> None:
        super().__init__(f"MQTT port {port} on 127.0.0.1 is already in use by another process")
        self.port = port


class Broker:
    """Owns the CA, the identities on disk, the ACL and the mosquitto process under ``root``.

    ``port`` 0 (runs, tests) takes a fresh ephemeral port at each launch; a fixed one (`local up`)
    is used as given, and :class:`BrokerPortInUse` is raised if it is taken."""

    def __init__(self, root: Path, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"MQTT port must be 0 (any free port) or 1-65535, not {port}")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority(root / "ca")
        self.fixed_port = port
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._devices_file = root / "devices.json"
        self._devices: set[str] = set()
        if self._devices_file.exists():
            self._devices = set(json.loads(self._devices_file.read_text()))
        self.server_cert = self.ca.issue("localhost", root / "server", server=True)
        self.pipeline = self.ca.issue(PIPELINE_IDENTITY, root / "identities" / PIPELINE_IDENTITY)
        self.control_plane = self.ca.issue(
            CONTROL_PLANE_IDENTITY, root / "identities" / CONTROL_PLANE_IDENTITY
        )

    # -- configuration -------------------------------------------------------------------------
    def _write_acl(self) -> Path:
        """Privileged users get everything; every other identity only its own thing's topics.

        The device rules are ``pattern`` lines on ``%u`` (the certificate CN = the thing name): the
        literal local form of an IoT policy on ``${iot:Connection.Thing.ThingName}``, and a device
        is authorised the moment its certificate exists, without waiting for mosquitto to act on
        the SIGHUP. The provisioned things are listed too (regenerated on every provisioning).
        """
        lines = ["# generated by local_cloud; regenerated on every provisioning"]
        for privileged in PRIVILEGED_IDENTITIES:
            # '#' does not match topics starting with '$', so $aws/# is granted explicitly.
            lines += [f"user {privileged}", "topic readwrite #", "topic readwrite $aws/#", ""]
        for thing in sorted(self._devices):
            lines += [
                f"user {thing}",
                f"topic readwrite edge/{thing}/#",
                f"topic readwrite $aws/things/{thing}/#",
                "",
            ]
        lines += ["pattern readwrite edge/%u/#", "pattern readwrite $aws/things/%u/#", ""]
        acl = self.root / "acl"
        tmp = acl.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(acl)
        return acl

    def _write_config(self) -> Path:
        acl = self._write_acl()
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    # as root, mosquitto would drop to user "mosquitto" and lose access to our keys
                    f"user {pwd.getpwuid(os.getuid()).pw_name}",
                    "per_listener_settings false",
                    "allow_anonymous false",
                    "persistence false",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    # Without it every small PUBLISH the broker forwards can wait for a delayed
                    # ACK (40 ms on Linux): request -> device -> result latency was ~45 ms.
                    "set_tcp_nodelay true",
                    f"acl_file {acl}",
                    # connect (client id = certificate identity) and subscribe checks
                    f"plugin {plugin_path()}",
                    f"plugin_opt_privileged {','.join(PRIVILEGED_IDENTITIES)}",
                    f"plugin_opt_client_prefix {PIPELINE_IDENTITY}={TOOL_CLIENT_PREFIX}",
                    # the control plane's second connection (the IoT rules engine)
                    f"plugin_opt_client_prefix {CONTROL_PLANE_IDENTITY}={CONTROL_PLANE_IDENTITY}-",
                    f"plugin_opt_own_topics {','.join(DEVICE_TOPIC_PREFIXES)}",
                    f"listener {self.port} 127.0.0.1",
                    # no cap on this listener's clients (the default, said out loud); the
                    # open-files limit is raised after launch (raise_open_files_limit)
                    "max_connections -1",
                    f"cafile {self.ca.ca_path}",
                    f"certfile {self.server_cert.cert_path}",
                    f"keyfile {self.server_cert.key_path}",
                    "require_certificate true",
                    # not use_identity_as_username: with it mosquitto skips every authentication
                    # plugin; the identity plugin sets the username to the certificate's CN itself
                    "tls_version tlsv1.2",
                    "",
                ]
            )
        )
        return conf

    # -- process -------------------------------------------------------------------------------
    def launch(self) -> None:
        """Start mosquitto on its fixed port or a fresh ephemeral one, without waiting (start-up
        overlaps imports). A taken fixed port is found here, before mosquitto starts: once it runs,
        the other process's listener would answer :meth:`wait_ready` in its place."""
        binary = find_mosquitto()
        if self.fixed_port and not port_free(self.fixed_port):
            raise BrokerPortInUse(self.fixed_port)
        self.port = self.fixed_port or free_port()
        conf = self._write_config()
        log = open(self.root / "mosquitto.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        raise_open_files_limit(self.process.pid)  # before it accepts: it listens after start-up
        (self.root / "mosquitto.pid").write_text(str(self.process.pid))

    def wait_ready(self, timeout: float = 5.0, attempts: int = 3) -> None:
        """Wait until mosquitto accepts connections; relaunch if the port was taken meanwhile (an
        ephemeral one is chosen afresh; a fixed one taken meanwhile raises :class:`BrokerPortInUse`)."""
        for attempt in range(attempts):
            if self.process is None:
                self.launch()
            process = self.process
            assert process is not None
            if wait_for_port(self.port, timeout, alive=lambda p=process: p.poll() is None):  # type: ignore[misc]
                return
            self.stop()
            if self.fixed_port and not port_free(self.fixed_port):
                raise BrokerPortInUse(self.fixed_port)
            if attempt < attempts - 1:
                self.launch()
        raise RuntimeError(f"mosquitto did not start; see {self.root / 'mosquitto.log'}")

    def start(self, timeout: float = 5.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def stop(self) -> None:
        """Stop mosquitto by PID (TERM, then KILL)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)

    # -- identities ----------------------------------------------------------------------------
    def add_device(self, thing_name: str) -> IssuedCertificate:
        """Issue a certificate whose CN is the thing name and grant it the thing's topics."""
        if not thing_name or any(c in thing_name for c in "/#+\n\r\t "):
            raise ValueError(f"invalid thing name for MQTT identity: {thing_name!r}")
        issued = self.ca.issue(thing_name, self.root / "devices" / thing_name)
        with self._lock:
            if thing_name not in self._devices:
                self._devices.add(thing_name)
                self._devices_file.write_text(json.dumps(sorted(self._devices)))
                self._write_acl()
                if self.process is not None and self.process.poll() is None:
                    os.kill(self.process.pid, signal.SIGHUP)
        return issued
