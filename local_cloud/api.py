"""``LocalCloud``: start the endpoint process (which owns mosquitto), use it, stop it by PID.

See docs/contracts.md §3. The endpoint runs in its own process so that moto's global state, the
Step Functions interpreter threads and Lambda workers never share the caller's interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from local_cloud.context import ACCESS_KEY, REGION, SECRET_KEY, mqtt_endpoint_env
from local_cloud.ports import port_free


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    ca_path: Path


@dataclass(frozen=True)
class ClientIdentity:
    """A privileged MQTT identity (may use every topic)."""

    cert_path: Path
    key_path: Path
    ca_path: Path
    client_id: str


@dataclass(frozen=True)
class DeviceIdentity:
    """A device's MQTT identity: its own topics only (``edge/<thing>/#``, ``$aws/things/<thing>/#``)."""

    thing_name: str
    cert_path: Path
    key_path: Path
    ca_path: Path
    mqtt_host: str
    mqtt_port: int
    certificate_arn: str = ""
    thing_group: str | None = None


class LocalCloudError(RuntimeError):
    """The local cloud could not start or answer."""


class PortInUse(LocalCloudError):
    """A fixed port asked for is taken by another process (another local cloud, LocalStack, a
    mosquitto...). ``mqtt`` says whose: the broker's port (True) or the endpoint's."""

    def __init__(self, port: int, *, mqtt: bool = False) -> None:
        super().__init__(
            f"{'MQTT ' if mqtt else ''}port {port} on 127.0.0.1 is already in use by another process"
        )
        self.port = port
        self.mqtt = mqtt


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalCloud:
    """Context manager over one endpoint process + its mosquitto; state under ``state_dir``.

    ``port`` (the endpoint's) and ``mqtt_port`` (the broker's) 0, the default, what runs and tests
    use side by side, let the kernel choose; a fixed port that is taken raises :class:`PortInUse`
    before anything starts. The endpoint listens on 127.0.0.1 only: its admin and health routes are
    unauthenticated, and moto's interpreter calls it back on localhost."""

    def __init__(
        self,
        state_dir: Path | str = ".local",
        *,
        startup_timeout: float = 30.0,
        port: int = 0,
        mqtt_port: int = 0,
    ) -> None:
        for name, value in (("port", port), ("mqtt_port", mqtt_port)):
            if not 0 <= value <= 65535:
                raise LocalCloudError(f"{name} must be 0 (any free port) or 1-65535, not {value}")
        if port and port == mqtt_port:
            raise LocalCloudError(f"the endpoint and the MQTT broker cannot share port {port}")
        self.state_dir = Path(state_dir).resolve()
        self.startup_timeout = startup_timeout
        self.port = port
        self.mqtt_port = mqtt_port
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.startup_seconds = 0.0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        self._check_ports()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready = self.state_dir / "endpoint.json"
        ready.unlink(missing_ok=True)
        log = open(self.state_dir / "endpoint.log", "ab")  # noqa: SIM115 - handed to the child
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_cloud",
                "serve",
                "--state-dir",
                str(self.state_dir),
                "--ready-file",
                str(ready),
                "--port",
                str(self.port),
                "--mqtt-port",
                str(self.mqtt_port),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the child by PID
        )
        log.close()
        deadline = started + self.startup_timeout
        while not ready.exists():
            if self.process.poll() is not None:
                self._check_ports()  # one taken between our check and the endpoint's or broker's bind
                raise LocalCloudError(
                    f"endpoint exited with {self.process.returncode}; see {self.state_dir}/endpoint.log"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise LocalCloudError(
                    f"endpoint did not become ready in {self.startup_timeout:.0f} s; "
                    f"see {self.state_dir}/endpoint.log"
                )
            time.sleep(0.02)
        self.info = json.loads(ready.read_text())
        self.startup_seconds = time.monotonic() - started
        return self

    def _check_ports(self) -> None:
        """Raise :class:`PortInUse` for a fixed port another process holds (the endpoint's first)."""
        if self.port and not port_free(self.port):
            raise PortInUse(self.port)
        if self.mqtt_port and not port_free(self.mqtt_port):
            raise PortInUse(self.mqtt_port, mqtt=True)

    def stop(self) -> None:
        """SIGTERM the endpoint (it stops mosquitto and its workers); KILL what is left, by PID."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        # the ready file names mosquitto; before it exists (a start that timed out) its pidfile does
        for pid in {self.info.get("mosquitto_pid"), self._mosquitto_from_pidfile()}:
            if pid and _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _mosquitto_from_pidfile(self) -> int | None:
        """The broker's PID from ``mqtt/mosquitto.pid``, only if that process is our mosquitto (its
        command line names our config): a PID from an old file may belong to anything by now."""
        conf = str(self.state_dir / "mqtt" / "mosquitto.conf")
        try:
            pid = int((self.state_dir / "mqtt" / "mosquitto.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if conf.encode() in cmdline else None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what callers use ----------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return str(self.info["endpoint_url"])

    @property
    def mqtt(self) -> MqttEndpoint:
        return MqttEndpoint(self.info["mqtt_host"], int(self.info["mqtt_port"]), Path(self.info["ca_path"]))

    @property
    def pipeline_identity(self) -> ClientIdentity:
        return ClientIdentity(
            Path(self.info["pipeline_cert"]),
            Path(self.info["pipeline_key"]),
            Path(self.info["ca_path"]),
            "mlops-edge-pipeline",
        )

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 and MQTT clients at this local cloud."""
        ident = self.pipeline_identity
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            **mqtt_endpoint_env(self.mqtt.host, self.mqtt.port),
            "MLOPS_EDGE_MQTT_CA": str(ident.ca_path),
            "MLOPS_EDGE_MQTT_CERT": str(ident.cert_path),
            "MLOPS_EDGE_MQTT_KEY": str(ident.key_path),
        }

    def client(self, service: str) -> Any:
        """A boto3 client for this endpoint (convenience for tests and the CLI)."""
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def _admin(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.endpoint_url}/_local_cloud/{route}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise LocalCloudError(f"{route} failed: {exc.read().decode()}") from exc

    def set_job_timeout_minute(self, seconds: float | None) -> None:
        """Test knob: how long the local jobs "minute" lasts (rollout rates, in-progress
        timeouts); None goes back to the endpoint's ``MLOPS_EDGE_LOCAL_MINUTE_S`` (default 60 s)."""
        self._admin("settings", {"job_timeout_minute_s": seconds})

    def provision_device(self, thing_name: str, thing_group: str | None = None) -> DeviceIdentity:
        """IoT thing + certificate + group membership + MQTT identity, in one idempotent call."""
        try:
            data = self._admin("devices", {"thing_name": thing_name, "thing_group": thing_group})
        except LocalCloudError as exc:
            raise LocalCloudError(f"provisioning {thing_name} failed: {exc}") from exc
        return DeviceIdentity(
            thing_name=data["thing_name"],
            cert_path=Path(data["cert_path"]),
            key_path=Path(data["key_path"]),
            ca_path=Path(data["ca_path"]),
            mqtt_host=data["mqtt_host"],
            mqtt_port=int(data["mqtt_port"]),
            certificate_arn=data["certificate_arn"],
            thing_group=data.get("thing_group"),
        )
