"""The one call the dispatcher makes before a provider runs: ``authorize(...) -> Verdict``.

It turns the parsed API call into checks (``operations.required_access``), decides each against
the caller's identity policies and the target's resource-based policies (``evaluate.decide``),
and stops at the first refusal, as AWS does. The verdict carries every decision (for the run
report's "actions used"), the dependent actions not enforced, and — when refused — the AWS
message and the HTTP response to send (``errors``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from local_cloud.iam.errors import ErrorResponse, access_denied_message, render_access_denied
from local_cloud.iam.evaluate import Decision, decide, request_for
from local_cloud.iam.operations import Access, Check, own_access, required_access
from local_cloud.iam.policy import Policy
from local_cloud.iam.principals import Caller


@dataclass(frozen=True)
class Verdict:
    """The outcome of one API call: each check run, with its decision, in order."""

    caller: Caller
    access: Access
    results: tuple[tuple[Check, Decision], ...]

    @property
    def allowed(self) -> bool:
        return all(d.allowed for _, d in self.results)

    @property
    def denial(self) -> tuple[Check, Decision] | None:
        """The refused check and its decision, if any (the last result: checking stops there)."""
        return next(((c, d) for c, d in self.results if not d.allowed), None)

    def message(self) -> str:
        """AWS's AccessDenied text for the refusal ("" when allowed)."""
        if self.denial is None:
            return ""
        check, decision = self.denial
        return access_denied_message(self.caller.arn, check.action, decision, service=self.access.service)

    def response(
        self, *, request_id: str, method: str = "POST", protocol: str | None = None
    ) -> ErrorResponse:
        """The HTTP refusal for the call's service and protocol."""
        return render_access_denied(
            self.access.service, self.message(), request_id=request_id, protocol=protocol, method=method
        )


def authorize(
    *,
    principal: str | Caller,
    service: str,
    operation: str,
    params: Mapping[str, object],
    policies: Sequence[Policy],
    account: str,
    region: str,
    facts: Mapping[str, object] | None = None,
    context: Mapping[str, object] | None = None,
    now: float | None = None,
    dependent: bool = True,
) -> Verdict:
    """Decide one API call.

    ``principal``: the caller (an assumed-role session ARN, or a ``Caller`` with its role ARN).
    ``service``/``operation``/``params``: botocore's service name, operation name and parsed
    parameters. ``policies``: the caller's identity policies and the target's resource-based
    ones. ``facts``: provider state a resource ARN needs (``dependencies.FACTS``). ``context``:
    request-wide keys the dispatcher knows (``aws:SecureTransport``, ``aws:ResourceTag/…``).
    ``dependent=False`` decides the operation's own action only: for a call whose target does not
    exist (no provider facts), AWS authorizes the action, then answers "not found" before any
    dependent action is used. Raises the ``exceptions`` errors for anything it cannot decide as
    AWS would.
    """
    caller = principal if isinstance(principal, Caller) else Caller(principal)
    if dependent:
        access = required_access(service, operation, params, account=account, region=region, facts=facts)
    else:
        access = own_access(service, operation, params, account=account, region=region, facts=facts)
    results: list[tuple[Check, Decision]] = []
    for check in access.checks:
        merged = {**(context or {}), **check.context}
        request = request_for(caller, check.action, check.resources, merged, region=region, now=now)
        decision = decide(request, policies)
        results.append((check, decision))
        if not decision.allowed:
            break
    return Verdict(caller, access, tuple(results))
