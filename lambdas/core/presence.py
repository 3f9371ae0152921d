"""Device presence for CheckDeployment: each device's last AWS IoT lifecycle event.

AWS IoT publishes ``$aws/events/presence/connected|disconnected/<clientId>``; the presence topic
rule (``infra/presence.py``) writes each event to ``<state prefix>presence/<clientId>.json``, so
the object holds the client's *last* event (a Greengrass core connects with its thing name as
client id). No object means the device has not connected since the rule exists.

Words (docs/contracts.md "Device presence"): a device whose last event is a disconnect is
``offline: disconnected <ISO time> (<disconnectReason>)``; one with no presence record that is
not a Greengrass core device either is ``never connected``; others keep the deployment's own
wording (last contact from ListEffectiveDeployments).

The early decision: a device disconnected for at least :func:`grace_s` is *offline*. When every
device of the stage that has not finished is offline, waiting for the time budget cannot change
the outcome, so CheckDeployment counts them as failed (``offline``) at once and the stage's
failure threshold decides, as it does for the devices the time budget runs out on. The grace
lets a core that reconnects (a restart, a network blip) write its ``connected`` event first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, transient_errors

LOG = logging.getLogger(__name__)
#: the rule's folder under the state prefix (infra/presence.py PRESENCE_PREFIX)
PRESENCE_FOLDER = "presence/"
#: how long a disconnected device may take to come back before it counts as offline
OFFLINE_GRACE_S = 30.0
#: with a short time budget the grace is this share of it, so the decision still comes first
GRACE_SHARE_OF_BUDGET = 0.25
NEVER_CONNECTED = "never connected"
OFFLINE = "offline"
WORKERS = 8


def presence_key(config: Mapping[str, Any], thing: str) -> str:
    return f"{config['state_prefix']}{PRESENCE_FOLDER}{thing}.json"


def grace_s(budget_s: float | None) -> float:
    """:data:`OFFLINE_GRACE_S`, or a quarter of a shorter time budget (``poll.deployment.timeout_s``)."""
    if not budget_s:
        return OFFLINE_GRACE_S
    return min(OFFLINE_GRACE_S, float(budget_s) * GRACE_SHARE_OF_BUDGET)


def last_event(s3: Any, config: Mapping[str, Any], thing: str) -> dict[str, Any] | None:
    """The device's last lifecycle event (one GetObject), None when it has none or it is unreadable."""
    key = presence_key(config, thing)
    with transient_errors(f"s3 get {key}"):
        try:
            body = s3.get_object(Bucket=config["bucket"], Key=key)["Body"].read()
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
    try:
        event = json.loads(body)
    except ValueError:
        LOG.warning("presence record %s is not JSON; ignored", key)
        return None
    return event if isinstance(event, dict) else None


def last_events(
    s3: Any, config: Mapping[str, Any], things: Sequence[str], *, workers: int = WORKERS
) -> dict[str, dict[str, Any] | None]:
    """:func:`last_event` of each thing, ``workers`` at a time."""
    if len(things) <= 1 or workers <= 1:
        return {thing: last_event(s3, config, thing) for thing in things}
    with ThreadPoolExecutor(max_workers=min(workers, len(things))) as pool:
        found = pool.map(lambda thing: last_event(s3, config, thing), things)
        return dict(zip(things, found, strict=True))


def disconnected_at(event: Mapping[str, Any] | None) -> float | None:
    """Epoch seconds of the disconnect when it is the device's last event, else None."""
    if not event or event.get("eventType") != "disconnected":
        return None
    stamp = event.get("timestamp")
    if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
        return None
    return float(stamp) / 1000.0  # AWS IoT's lifecycle timestamps are milliseconds


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def presence_detail(event: Mapping[str, Any] | None, registered: bool) -> str | None:
    """The presence wording of an unfinished device, None when the deployment's own applies."""
    since = disconnected_at(event)
    if since is not None:
        reason = (event or {}).get("disconnectReason") or "no reason given"
        return f"{OFFLINE}: disconnected {_iso(since)} ({reason})"
    if event is None and not registered:
        return NEVER_CONNECTED
    return None


def name_offline(
    s3: Any,
    config: Mapping[str, Any],
    unfinished: Sequence[dict[str, Any]],
    *,
    never_registered: str,
    now: float,
) -> list[dict[str, Any]]:
    """Rewords each unfinished device by its presence (in place) and returns those offline for at
    least the grace period. ``never_registered``: the deployment's detail of a device that is no
    Greengrass core device."""
    if not unfinished:
        return []
    budget = (config.get("poll") or {}).get("deployment", {}).get("timeout_s")
    grace = grace_s(budget)
    events = last_events(s3, config, [d["thing"] for d in unfinished])
    offline = []
    for device in unfinished:
        event = events.get(device["thing"])
        detail = presence_detail(event, registered=device.get("detail") != never_registered)
        if detail is None:
            continue
        device["detail"] = detail
        since = disconnected_at(event)
        if since is not None:
            device["offline_since"] = since
            if now - since >= grace:
                offline.append(device)
    return offline
