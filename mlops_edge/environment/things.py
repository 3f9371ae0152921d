"""Things registered through the IoT API as a device's provisioning does, for many devices at once.

``LocalCloud.provision_device`` provisions one full device inside the endpoint (and makes the
broker reload its ACL); the job clients (``job_clients.py``) need a thousand things quickly, and
their certificates already come from the local CA, so they register them here with boto3, as a
fleet-provisioning script would against AWS: CreateThing, RegisterCertificateWithoutCA,
AttachThingPrincipal, AddThingToThingGroup, from a few threads (each call waits for the local
cloud's durable write, so a lone caller would spend most of its time waiting).
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local_cloud.mqtt.ca import IssuedCertificate


def ensure_thing_group(iot: Any, group: str) -> None:
    with contextlib.suppress(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_thing_group(thingGroupName=group)


def register_things(
    iot: Any, issued: Mapping[str, IssuedCertificate], group: str | None, workers: int = 16
) -> None:
    """Each thing with its certificate attached (idempotent), and in ``group`` when given."""
    if group:
        ensure_thing_group(iot, group)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda name: register_thing(iot, name, issued[name], group), issued))


def register_thing(iot: Any, thing: str, issued: IssuedCertificate, group: str | None) -> None:
    try:
        iot.create_thing(thingName=thing)
        known = False
    except iot.exceptions.ResourceAlreadyExistsException:
        known = True  # an earlier run in the same state: its certificate may be attached already
    if not known or not iot.list_thing_principals(thingName=thing)["principals"]:
        iot.attach_thing_principal(thingName=thing, principal=register_certificate(iot, issued.cert_pem))
    if group:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)


def register_certificate(iot: Any, pem: str) -> str:
    """RegisterCertificateWithoutCA; its ARN. Already registered (a retried request whose first
    answer was lost on a loaded machine, or an earlier run): found by its certificate id, the
    SHA-256 of the DER as AWS computes it (or of the PEM, as moto does by default)."""
    try:
        return str(iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")["certificateArn"])
    except iot.exceptions.ResourceAlreadyExistsException:
        der = ssl.PEM_cert_to_DER_cert(pem)
        for cert_id in (hashlib.sha256(der).hexdigest(), hashlib.sha256(pem.encode()).hexdigest()):
            with contextlib.suppress(iot.exceptions.ResourceNotFoundException):
                described = iot.describe_certificate(certificateId=cert_id)["certificateDescription"]
                return str(described["certificateArn"])
        raise


def move_things(iot: Any, names: Iterable[str], group: str, leave: str | None, workers: int = 16) -> None:
    """Into ``group`` (created if missing) and out of ``leave``: Greengrass combines the deployments
    of every group a core is in, so a canary stage's group and the fleet group stay disjoint."""
    ensure_thing_group(iot, group)

    def move(thing: str) -> None:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        if leave:
            iot.remove_thing_from_thing_group(thingGroupName=leave, thingName=thing)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(move, names))
