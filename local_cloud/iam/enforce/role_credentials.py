"""Credentials for the services that act as a role (Lambda functions, the state machine), after
their trust checks."""

from __future__ import annotations

import logging
import threading

from local_cloud.iam.enforce.modes import Mode, ModeHolder
from local_cloud.iam.enforce.sessions import RoleNotAssumable, RoleSessions, SessionCredentials, session_name
from local_cloud.iam.enforce.store import PolicyStore
from local_cloud.iam.exceptions import IamError
from local_cloud.iam.policy import Policy

LOG = logging.getLogger(__name__)

LAMBDA = "lambda.amazonaws.com"
STATES = "states.amazonaws.com"
LAMBDA_TRUST_REFUSED = "The role defined for the function cannot be assumed by Lambda."


class RoleCredentials(ModeHolder):
    """The authorizer's role sessions: trust checks (logged when they change) and minted credentials."""

    region: str
    sessions: RoleSessions
    store: PolicyStore
    _trust_logged: dict[tuple[str, str, str], bool]
    _trust_lock: threading.Lock

    def function_credentials(
        self, role_arn: str, function_arn: str, function_name: str
    ) -> SessionCredentials | None:
        """The credentials a function runs with: its role's session (None: the admin keys, in
        off mode or when audit mode finds the role not assumable). ``RoleNotAssumable`` in
        enforce mode."""
        if self.mode is Mode.OFF:
            return None
        if not self._trusted(role_arn, (LAMBDA,), function_arn):
            if self.enforcing:
                raise RoleNotAssumable(LAMBDA_TRUST_REFUSED)
            return None
        return self._mint(role_arn, session_name(function_name))

    def state_machine_credentials(self, role_arn: str, state_machine_arn: str) -> SessionCredentials | None:
        """The credentials the state machine's service integrations are signed with."""
        if self.mode is Mode.OFF:
            return None
        principals = (STATES, f"states.{self.region}.amazonaws.com")
        if not self._trusted(role_arn, principals, state_machine_arn):
            if self.enforcing:
                raise RoleNotAssumable(
                    f"Neither the global service principal {STATES}, nor the regional one is "
                    f"authorized to assume the provided role ({role_arn})."
                )
            return None
        name = state_machine_arn.rsplit(":", 1)[-1] if state_machine_arn else "StepFunctions"
        return self._mint(role_arn, session_name(name))

    def service_credentials(
        self, role_arn: str, service: str, source_arn: str, name: str
    ) -> SessionCredentials | None:
        """The credentials another service acting as a customer role is signed with (IoT's rule
        actions as ``iot.amazonaws.com``, ``source_arn`` the rule): None in off mode or when audit
        mode finds the role not assumable; ``RoleNotAssumable`` in enforce mode."""
        if self.mode is Mode.OFF:
            return None
        if not self._trusted(role_arn, (service,), source_arn):
            if self.enforcing:
                raise RoleNotAssumable(f"{service} is not authorized to assume the role {role_arn}")
            return None
        return self._mint(role_arn, session_name(name))

    def lambda_trust_refusal(self, role_arn: str, function_arn: str) -> str | None:
        """CreateFunction / UpdateFunctionConfiguration: AWS's message when Lambda may not assume
        the role and this mode refuses; None otherwise."""
        if self.mode is Mode.OFF or self._trusted(role_arn, (LAMBDA,), function_arn):
            return None
        return LAMBDA_TRUST_REFUSED if self.enforcing else None

    def _mint(self, role_arn: str, name: str) -> SessionCredentials | None:
        try:
            return self.sessions.credentials(role_arn, name)
        except Exception as exc:
            LOG.exception("AssumeRole %s failed", role_arn)
            if self.enforcing:
                raise RoleNotAssumable(f"AssumeRole {role_arn} failed: {exc}") from exc
            return None

    def _trusted(self, role_arn: str, services: tuple[str, ...], source_arn: str) -> bool:
        check = None
        try:
            for service in services:
                check = self.sessions.trust(role_arn, service, source_arn)
                if check.allowed:
                    break
        except IamError as exc:  # a trust policy we cannot evaluate as AWS would
            LOG.warning("trust policy of %s cannot be decided: %s", role_arn, exc)
            if self.log is not None:
                self.log.write(
                    {
                        "type": "error",
                        "mode": self.mode.value,
                        "principal": services[0],
                        "action": "sts:AssumeRole",
                        "resources": [role_arn],
                        "error": f"{type(exc).__name__}: {exc}",
                        "refused": self.enforcing,
                    }
                )
            if self.enforcing:
                raise RoleNotAssumable(f"the trust policy of {role_arn} cannot be decided: {exc}") from exc
            return False
        assert check is not None
        key = (role_arn, services[0], source_arn)
        with self._trust_lock:
            changed = self._trust_logged.get(key) != check.allowed
            self._trust_logged[key] = check.allowed
        if changed and self.log is not None:
            decision = check.decision
            self.log.write(
                {
                    "type": "trust",
                    "mode": self.mode.value,
                    "principal": check.service,
                    "action": "sts:AssumeRole",
                    "resources": [role_arn],
                    "source_arn": source_arn,
                    "decision": decision.kind if decision else "NoSuchRole",
                    "statements": [str(s) for s in decision.statements] if decision else [],
                    "refused": self.enforcing and not check.allowed,
                }
            )
        return check.allowed

    def _trust_policy(self, role_arn: str) -> Policy | None:
        role = self.store.role(role_arn)
        if not role.exists:
            raise LookupError(role_arn)
        return role.trust
