"""Device presence for CheckDeployment: each device's newest AWS IoT lifecycle event.

AWS IoT publishes ``$aws/events/presence/connected|disconnected/<clientId>``, and documents that
these "might be sent out of order" and duplicated (developerguide/life-cycle-events.html). So the
presence topic rule (``infra/presence.py``) does not keep one object per client that each event
overwrites — a late, older event would then win — but writes one object per event,
``<state prefix>presence/<clientId>/<versionNumber>-<timestamp>-<eventType>.json``
(:data:`EVENT_KEY_TEMPLATE`): a duplicate lands on its own key again, a late event beside the newer
ones. The reader lists the client's folder (the key names carry what ordering needs) and takes the
newest event by :func:`is_newer`, reading its body only when it is a disconnect (for its reason).
A Greengrass core connects with its thing name as client id. No event means the device has not
connected since the rule exists (or only before this layout: :func:`legacy_key` is read then).

Order, as AWS prescribes it: ``versionNumber`` grows from one connection of a client id to the
next and is shared by a connection's connect and disconnect, so the higher version is newer and,
at the same version, the disconnect is newer. The version restarts at 0 after the client has been
away about an hour, so two events further apart in time than :data:`VERSION_RESET_WINDOW_MS` are
ordered by ``timestamp`` instead (only ±2 minutes accurate, which is why nearer events are not).

Words (docs/contracts.md "Device presence"): a device whose newest event is a disconnect is
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
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from lambdas.core.aws import is_not_found, transient_errors

LOG = logging.getLogger(__name__)
#: the rule's folder under the state prefix (infra/presence.py PRESENCE_PREFIX)
PRESENCE_FOLDER = "presence/"
#: the rule's s3 key below :data:`PRESENCE_FOLDER` (substitution templates over the event's own
#: fields): one object per client and event; infra/presence.py builds the rule from it
EVENT_KEY_TEMPLATE = "${clientId}/${versionNumber}-${timestamp}-${eventType}.json"
#: a key's name as the template makes it; a field the event lacks is substituted by nothing
_EVENT_NAME = re.compile(r"^(?P<version>\d*)-(?P<timestamp>\d*)-(?P<kind>connected|disconnected)\.json$")
#: AWS resets versionNumber to 0 after a client has been disconnected about an hour; timestamps
#: are accurate to ±2 minutes. Events more than this apart are ordered by timestamp (a reset may lie
#: between them), nearer ones by version (their timestamps may be inverted, a reset cannot).
VERSION_RESET_WINDOW_MS = 30 * 60 * 1000
#: at the same version (one connection), its disconnect comes after its connect
_KIND_RANK = {"connected": 0, "disconnected": 1}
#: how long a disconnected device may take to come back before it counts as offline
OFFLINE_GRACE_S = 30.0
#: with a short time budget the grace is this share of it, so the decision still comes first
GRACE_SHARE_OF_BUDGET = 0.25
NEVER_CONNECTED = "never connected"
OFFLINE = "offline"
WORKERS = 8


def events_prefix(config: Mapping[str, Any], thing: str) -> str:
    """The client's folder: every lifecycle event the rule stored for it."""
    return f"{config['state_prefix']}{PRESENCE_FOLDER}{thing}/"


def legacy_key(config: Mapping[str, Any], thing: str) -> str:
    """The single object per client the rule overwrote before events were kept apart; read only
    when the folder is empty, so a device that has not reconnected since the upgrade still counts."""
    return f"{config['state_prefix']}{PRESENCE_FOLDER}{thing}.json"


def _number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def is_newer(event: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``event`` happened after ``than`` (two lifecycle events of one client id).

    Higher ``versionNumber`` first, the disconnect over the connect of the same version; events
    more than :data:`VERSION_RESET_WINDOW_MS` apart (or without a version) by ``timestamp``. Equal
    events (duplicates) are not newer than each other."""
    t1, t2 = _number(event.get("timestamp")), _number(than.get("timestamp"))
    v1, v2 = _number(event.get("versionNumber")), _number(than.get("versionNumber"))
    r1 = _KIND_RANK.get(str(event.get("eventType")), -1)
    r2 = _KIND_RANK.get(str(than.get("eventType")), -1)
    if t1 is not None and t2 is not None and (abs(t1 - t2) > VERSION_RESET_WINDOW_MS or None in (v1, v2)):
        return (t1, r1) > (t2, r2)
    if v1 is not None and v2 is not None:
        return (v1, r1, t1 or 0) > (v2, r2, t2 or 0)
    return False  # nothing to order by: the first one seen stays


def newest(events: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The newest of ``events`` by :func:`is_newer`, whatever order they come in (they are put in
    one canonical order first, so even inconsistent fields give the same answer every time)."""

    def canonical(e: Mapping[str, Any]) -> tuple[int, int, int]:
        stamp, version = _number(e.get("timestamp")), _number(e.get("versionNumber"))
        return (stamp or 0, version or 0, _KIND_RANK.get(str(e.get("eventType")), -1))

    best: Mapping[str, Any] | None = None
    for event in sorted(events, key=canonical):
        if best is None or is_newer(event, best):
            best = event
    return dict(best) if best is not None else None


def _from_key(thing: str, key: str) -> dict[str, Any] | None:
    """What ordering needs, from a key the rule wrote (None for a key it did not write)."""
    found = _EVENT_NAME.match(key.rsplit("/", 1)[-1])
    if not found:
        return None
    event: dict[str, Any] = {"clientId": thing, "eventType": found["kind"], "key": key}
    for field, group in (("versionNumber", "version"), ("timestamp", "timestamp")):
        if found[group]:
            event[field] = int(found[group])
    return event


def _listed(s3: Any, config: Mapping[str, Any], thing: str) -> list[dict[str, Any]]:
    """Every event stored for ``thing`` (ListObjectsV2 pages of the client's folder; ``Delimiter``
    keeps another client id that merely starts with ``<thing>/`` out)."""
    prefix, events = events_prefix(config, thing), []
    token: dict[str, str] = {}
    while True:
        with transient_errors(f"s3 list {prefix}"):
            page = s3.list_objects_v2(Bucket=config["bucket"], Prefix=prefix, Delimiter="/", **token)
        events += [e for o in page.get("Contents", []) if (e := _from_key(thing, o["Key"]))]
        if not page.get("IsTruncated"):
            return events
        token = {"ContinuationToken": page["NextContinuationToken"]}


def _read(s3: Any, config: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """A stored event's body (one GetObject); None when missing or not a JSON object."""
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


def last_event(s3: Any, config: Mapping[str, Any], thing: str) -> dict[str, Any] | None:
    """The device's newest lifecycle event, None when it has none.

    One ListObjectsV2 (a page per 1,000 events), plus one GetObject when the newest is a
    disconnect (its body has the reason; the key's fields win for ordering)."""
    found = newest(_listed(s3, config, thing))
    if found is None:
        return _read(s3, config, legacy_key(config, thing))
    if found["eventType"] == "disconnected":
        body = _read(s3, config, found["key"]) or {}
        found = {**body, **found}
    found.pop("key", None)
    return found


def grace_s(budget_s: float | None) -> float:
    """:data:`OFFLINE_GRACE_S`, or a quarter of a shorter time budget (``poll.deployment.timeout_s``)."""
    if not budget_s:
        return OFFLINE_GRACE_S
    return min(OFFLINE_GRACE_S, float(budget_s) * GRACE_SHARE_OF_BUDGET)


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
    """Epoch seconds of the disconnect when it is the device's newest event, else None."""
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
