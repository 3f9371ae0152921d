"""Who is calling (SVCUID tokens) and what they may do (recipe ``accessControl``)."""

from __future__ import annotations

import fnmatch
import secrets
import threading
from collections.abc import Callable
from typing import Any

from ..topics import has_wildcard, matches
from .exceptions import UnauthorizedError

THING_VARIABLE = "{iot:thingName}"


class TokenRegistry:
    """One random token per component; the IPC CONNECT payload's ``authToken`` names the caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, str] = {}
        self._by_component: dict[str, str] = {}

    def token_for(self, component: str) -> str:
        """The component's token, created on first use (stable for the core's lifetime)."""
        with self._lock:
            token = self._by_component.get(component)
            if token is None:
                token = secrets.token_urlsafe(24)
                self._by_component[component] = token
                self._by_token[token] = component
            return token

    def component_for(self, token: str | None) -> str | None:
        """The component a token belongs to, or None for an unknown token."""
        with self._lock:
            return self._by_token.get(token or "")

    def revoke(self, component: str) -> None:
        """Forget a removed component's token."""
        with self._lock:
            token = self._by_component.pop(component, None)
            if token:
                self._by_token.pop(token, None)


def _resource_matches(pattern: str, resource: str) -> bool:
    if pattern == "*" or pattern == resource:
        return True
    if has_wildcard(pattern) and not has_wildcard(resource) and matches(pattern, resource):
        return True
    return "*" in pattern and fnmatch.fnmatchcase(resource, pattern)


#: Decisions remembered per component; past it the component's memo starts again (topics vary).
MEMO_ENTRIES = 1024

Watch = Callable[[str, Callable[[], None]], object]


class Authorizer:
    """Checks a component's ``accessControl`` policies, like the nucleus AuthorizationHandler.

    ``policies(component)`` returns that component's configuration ``accessControl`` map:
    ``{service: {policyId: {"operations": [...], "resources": [...]}}}``.

    With ``watch(component, callback)`` (callback run whenever the component's ``accessControl``
    changes), decisions are remembered until that happens: every IPC publish is checked, and
    reading the policies is a deep copy out of the configuration store (~25 us a message).
    Without it every check reads the policies again.
    """

    def __init__(
        self, policies: Callable[[str], dict[str, Any]], thing_name: str, watch: Watch | None = None
    ) -> None:
        self._policies = policies
        self._thing = thing_name
        self._watch = watch
        self._lock = threading.Lock()
        self._memo: dict[str, dict[tuple[str, str, str], bool]] = {}
        self._generation: dict[str, int] = {}  # bumped by each change: a check racing it keeps nothing

    def check(self, component: str, service: str, operation: str, resource: str) -> None:
        """Raise :class:`UnauthorizedError` unless a policy grants ``operation`` on ``resource``."""
        key = (service, operation, resource)
        memo = self._memo.get(component)
        allowed = memo.get(key) if memo is not None else None
        if allowed is None:
            allowed = self._decide(component, key)
        if not allowed:
            raise UnauthorizedError(
                f"Principal {component} is not authorized to perform {service}:{operation} on resource {resource}"
            )

    def _decide(self, component: str, key: tuple[str, str, str]) -> bool:
        if self._watch is None:
            return self._allows(self._policies(component), *key)
        with self._lock:
            generation = self._generation.get(component)
            if generation is None:  # first check of this component: follow its policies from now on
                generation = self._generation[component] = 0
                self._watch(component, lambda: self._changed(component))
        allowed = self._allows(self._policies(component), *key)
        with self._lock:
            if self._generation.get(component) == generation:
                memo = self._memo.setdefault(component, {})
                if len(memo) >= MEMO_ENTRIES:
                    memo.clear()
                memo[key] = allowed
        return allowed

    def _changed(self, component: str) -> None:
        with self._lock:
            self._generation[component] = self._generation.get(component, 0) + 1
            self._memo.pop(component, None)

    def _allows(self, policies: dict[str, Any], service: str, operation: str, resource: str) -> bool:
        for policy in (policies.get(service) or {}).values():
            if not isinstance(policy, dict):
                continue
            ops = policy.get("operations") or []
            if operation not in ops and "*" not in ops:
                continue
            for pattern in policy.get("resources") or []:
                if _resource_matches(str(pattern).replace(THING_VARIABLE, self._thing), resource):
                    return True
        return False
