"""Temporary credentials per role, as Lambda and Step Functions get them, and who holds a key.

``RoleSessions.credentials(role_arn, service=…, source_arn=…, session_name=…)`` is what a service
does before it acts as a role: the role's trust policy must let the service principal
(``lambda.amazonaws.com``, ``states.amazonaws.com``) ``sts:AssumeRole`` it, with the
``aws:SourceAccount`` / ``aws:SourceArn`` of the resource it acts for (the function, the state
machine), as AWS passes them; then STS ``AssumeRole`` (the local cloud's own STS API, admin
identity) mints the session. Sessions are cached per (role, session name) and minted again when
less than ``REFRESH_MARGIN_S`` of their hour is left, so a Lambda worker started with them
outlives no credentials even at the 15-minute function timeout.

``RoleSessions.caller(access_key)`` answers who signs with a key: an assumed-role session (ours,
or one anybody minted through the endpoint's STS API, which moto keeps), or None for every
other key (the static admin keys ``testing``, moto's interpreter's ``ak``, IAM users' keys) —
those are not evaluated.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_cloud.iam.evaluate import Decision, decide, request_for
from local_cloud.iam.exceptions import IamError
from local_cloud.iam.principals import Caller

LOG = logging.getLogger(__name__)

SESSION_SECONDS = 3600  # AssumeRole's default, and a role's default MaxSessionDuration
REFRESH_MARGIN_S = 20 * 60  # > Lambda's 15-minute maximum timeout


class RoleNotAssumable(IamError):
    """The role's trust policy does not let the service assume it (or the role is gone)."""

    def __init__(self, message: str, decision: Decision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float  # epoch seconds
    role_arn: str
    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION

    def env(self) -> dict[str, str]:
        """The variables Lambda gives a function's runtime."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


@dataclass(frozen=True)
class TrustCheck:
    """One service's attempt to assume a role: what was asked and the trust policy's answer."""

    service: str
    role_arn: str
    context: dict[str, object]
    decision: Decision | None  # None: the role does not exist

    @property
    def allowed(self) -> bool:
        return self.decision is not None and self.decision.allowed


def session_name(text: str) -> str:
    """A valid RoleSessionName (``[\\w+=,.@-]{2,64}``) from a function or state machine name."""
    cleaned = "".join(c if c.isalnum() or c in "+=,.@-_" else "-" for c in text)[:64]
    return cleaned if len(cleaned) >= 2 else f"{cleaned}--"[:2]


class RoleSessions:
    """Mints and caches role sessions; resolves access keys to callers."""

    def __init__(
        self,
        client: Callable[[str], Any],
        trust_policy: Callable[[str], Any],
        account: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``trust_policy(role_arn)`` returns the role's parsed trust ``Policy`` (None if the role
        has none), or raises ``LookupError`` when the role does not exist."""
        self._client = client
        self._trust_policy = trust_policy
        self.account = account
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], SessionCredentials] = {}
        self._callers: dict[str, Caller] = {}

    # -- trust ---------------------------------------------------------------------------------
    def trust(self, role_arn: str, service: str, source_arn: str = "") -> TrustCheck:
        """Whether ``service`` may assume ``role_arn`` for the resource ``source_arn``."""
        context: dict[str, object] = {"aws:SourceAccount": self.account}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        try:
            policy = self._trust_policy(role_arn)
        except LookupError:
            return TrustCheck(service, role_arn, context, None)
        request = request_for(Caller(service), "sts:AssumeRole", role_arn, context)
        decision = decide(request, [policy] if policy is not None else [])
        return TrustCheck(service, role_arn, context, decision)

    # -- sessions ------------------------------------------------------------------------------
    def credentials(self, role_arn: str, name: str) -> SessionCredentials:
        """A session of ``role_arn`` named ``name``, cached until ``REFRESH_MARGIN_S`` before its
        expiry (the trust check is the caller's: ``trust``)."""
        key = (role_arn, name)
        with self._lock:
            found = self._sessions.get(key)
        if found is not None and found.expiration - self._clock() > REFRESH_MARGIN_S:
            return found
        minted = self._assume(role_arn, name)
        with self._lock:
            self._sessions[key] = minted
            self._callers[minted.access_key_id] = Caller(minted.arn, role_arn=role_arn)
        return minted

    def _assume(self, role_arn: str, name: str) -> SessionCredentials:
        out = self._client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=name, DurationSeconds=SESSION_SECONDS
        )
        creds, user = out["Credentials"], out["AssumedRoleUser"]
        expiration = creds["Expiration"]
        if isinstance(expiration, dt.datetime):
            if expiration.tzinfo is None:
                expiration = expiration.replace(tzinfo=dt.UTC)
            expires = expiration.timestamp()
        else:
            expires = self._clock() + SESSION_SECONDS
        return SessionCredentials(
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expiration=expires,
            role_arn=role_arn,
            arn=user["Arn"],
        )

    # -- callers -------------------------------------------------------------------------------
    def caller(self, access_key: str) -> Caller | None:
        """The assumed-role session signing with ``access_key``, None if it is not one."""
        with self._lock:
            found = self._callers.get(access_key)
        if found is not None or not access_key.startswith("ASIA"):
            return found
        found = _moto_session(access_key)
        if found is not None:
            with self._lock:
                self._callers[access_key] = found
        return found


def _moto_session(access_key: str) -> Caller | None:
    """A session minted through the endpoint's STS API by someone else (moto keeps them)."""
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for partition in list(sts_backends[account].keys()):
            role = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
            if role is not None:
                return Caller(role.arn, role_arn=role.role_arn)
    return None
