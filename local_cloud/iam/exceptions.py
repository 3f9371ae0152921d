"""Errors of the IAM evaluator.

Every one of them means "the local cloud cannot decide this the way AWS would", so none is ever
caught and turned into a silent Allow or Deny: a malformed policy, a condition operator or key we
do not evaluate, an operation we have no IAM data for. The dispatcher lets them surface as a
server error naming the cause. An AWS refusal is not an exception here: it is a ``Decision``.
"""

from __future__ import annotations


class IamError(Exception):
    """Base of the evaluator's errors."""


class PolicyError(IamError):
    """A policy document AWS would reject (IAM's ``MalformedPolicyDocument``), or that uses a
    feature this evaluator refuses to guess at (policy variables)."""


class UnsupportedConditionKey(IamError):
    """A statement that applies to the request has a condition on a key the local cloud does not
    fill. Evaluating it as "absent" could flip an Allow or a Deny, so it is refused loudly."""


class UnknownContextKey(IamError):
    """A request context carries a key the evaluator does not know: a dispatcher bug (a typo would
    otherwise read as "key absent" in every condition)."""


class UnknownOperation(IamError):
    """An operation the IAM dataset (or our mapping on top of it) does not describe."""


class MissingResourceFact(IamError):
    """A resource ARN cannot be built from the request: a parameter or a fact from the provider's
    state (a deployment's job id, a secret's full ARN) is missing."""


class UnsupportedProtocol(IamError):
    """An error body was asked for a wire protocol we do not render."""
