"""What every provider of the local cloud shares: where it lives, who it is, how to call itself."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
#: Where a client finds the MQTT broker (the local IoT data endpoint, on a port chosen at start):
#: ``LocalCloud.env()`` gives these to the operator's shell and the local Lambda runtime to every
#: function, as AWS gives ``AWS_REGION``.
MQTT_HOST_ENV, MQTT_PORT_ENV = "MLOPS_EDGE_MQTT_HOST", "MLOPS_EDGE_MQTT_PORT"


def mqtt_endpoint_env(host: str, port: int) -> dict[str, str]:
    return {MQTT_HOST_ENV: host, MQTT_PORT_ENV: str(port)}


@dataclass
class ServerContext:
    """Shared state of one endpoint process.

    Providers call *other* services through ``client()`` (boto3 against this very endpoint), so
    every cross-service call goes through the same validated API a user's code would use.
    """

    state_dir: Path
    port: int = 0
    region: str = REGION
    account_id: str = ACCOUNT_ID
    stopping: threading.Event = field(default_factory=threading.Event)
    extras: dict[str, Any] = field(default_factory=dict)
    #: the dispatch layer's IAM authorizer (``local_cloud.iam.enforce.Authorizer``), which also
    #: mints the role credentials functions and the state machine run with; None: no IAM at all
    iam: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def aws_env(self) -> dict[str, str]:
        """Environment that points a child process (Lambda worker, training script) at us."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 2}),
        )
