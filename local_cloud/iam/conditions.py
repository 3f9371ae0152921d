"""Condition operators: one small object per operator in one table, modifiers handled once.

IAM's rules, as its reference states them (iam-simulate's layout; moto knows one operator):

- the keys of one operator AND, the operators of one block AND, the values of one key OR;
- a key missing from the request makes a condition false, except for negated operators
  (``StringNotEquals``, ``ArnNotLike``, ``NotIpAddress``…), which are then true;
- ``…IfExists``: a missing key makes the condition true;
- ``ForAnyValue:`` at least one request value matches (missing key: false); ``ForAllValues:``
  every request value matches (missing key: true); without a set operator a multi-valued key
  behaves as ``ForAnyValue`` (negated: as "no value matches");
- ``Null``: ``true`` means the key is absent, ``false`` that it is present.

An unknown operator is a ``PolicyError`` when the policy is parsed (IAM refuses such a policy). A
key the local cloud does not fill (``keys.KNOWN_KEYS``) raises ``UnsupportedConditionKey`` when
the statement holding it applies to a request: never read as "absent".
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from local_cloud.iam.exceptions import PolicyError, UnsupportedConditionKey
from local_cloud.iam.keys import is_known
from local_cloud.iam.matching import arn_matches, check_pattern, string_like

Match = Callable[[object, str], bool]


@dataclass(frozen=True)
class Operator:
    """One base operator: how a policy value is read (``parse``, which raises ``ValueError`` on a
    value IAM would refuse) and how it meets one request value (``match``)."""

    name: str
    match: Match
    parse: Callable[[str], object] = str
    negated: bool = False


def _number(text: str) -> float:
    return float(text)


def _date(text: str) -> float:
    try:
        return float(text)  # epoch seconds are accepted too
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _bool(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{text!r} is not true or false")
    return lowered


def _binary(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _unescape(text: str) -> str:
    check_pattern(text)  # refuses policy variables
    return text.replace("${*}", "*").replace("${?}", "?").replace("${$}", "$")


def _numeric(compare: Callable[[float, float], bool]) -> Match:
    def match(policy: object, value: str) -> bool:
        try:
            return compare(_number(value), policy)  # type: ignore[arg-type]
        except ValueError:
            return False

    return match


def _dated(compare: Callable[[float, float], bool]) -> Match:
    def match(policy: object, value: str) -> bool:
        try:
            return compare(_date(value), policy)  # type: ignore[arg-type]
        except ValueError:
            return False

    return match


def _in_network(policy: object, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in policy  # type: ignore[operator]
    except ValueError:
        return False


def _binary_equals(policy: object, value: str) -> bool:
    try:
        return base64.b64decode(value, validate=True) == policy
    except (ValueError, binascii.Error):
        return False


def _table() -> dict[str, Operator]:
    base: list[Operator] = [
        Operator("StringEquals", lambda p, v: p == v, _unescape),
        Operator("StringEqualsIgnoreCase", lambda p, v: str(p).casefold() == v.casefold(), _unescape),
        Operator("StringLike", lambda p, v: string_like(str(p), v), lambda t: (check_pattern(t), t)[1]),
        Operator("NumericEquals", _numeric(lambda a, b: a == b), _number),
        Operator("NumericLessThan", _numeric(lambda a, b: a < b), _number),
        Operator("NumericLessThanEquals", _numeric(lambda a, b: a <= b), _number),
        Operator("NumericGreaterThan", _numeric(lambda a, b: a > b), _number),
        Operator("NumericGreaterThanEquals", _numeric(lambda a, b: a >= b), _number),
        Operator("DateEquals", _dated(lambda a, b: a == b), _date),
        Operator("DateLessThan", _dated(lambda a, b: a < b), _date),
        Operator("DateLessThanEquals", _dated(lambda a, b: a <= b), _date),
        Operator("DateGreaterThan", _dated(lambda a, b: a > b), _date),
        Operator("DateGreaterThanEquals", _dated(lambda a, b: a >= b), _date),
        Operator("Bool", lambda p, v: p == v.lower(), _bool),
        Operator("BinaryEquals", _binary_equals, _binary),
        Operator("IpAddress", _in_network, lambda t: ipaddress.ip_network(t, strict=False)),
        Operator("ArnEquals", lambda p, v: arn_matches(str(p), v), lambda t: (check_pattern(t), t)[1]),
        Operator("ArnLike", lambda p, v: arn_matches(str(p), v), lambda t: (check_pattern(t), t)[1]),
    ]
    negations = {
        "StringNotEquals": "StringEquals",
        "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
        "StringNotLike": "StringLike",
        "NumericNotEquals": "NumericEquals",
        "DateNotEquals": "DateEquals",
        "NotIpAddress": "IpAddress",
        "ArnNotEquals": "ArnEquals",
        "ArnNotLike": "ArnLike",
    }
    table = {op.name.lower(): op for op in base}
    for name, positive in negations.items():
        op = table[positive.lower()]
        table[name.lower()] = Operator(name, op.match, op.parse, negated=True)
    return table


#: Every IAM condition operator but ``Null`` (handled in ``Clause``), by lower-cased name.
OPERATORS: Mapping[str, Operator] = _table()


@dataclass(frozen=True)
class Clause:
    """One key under one operator: ``"ForAnyValue:StringLike": {"s3:prefix": [...]}``."""

    text: str  # the operator as written, for messages
    key: str  # lower-cased
    operator: Operator | None  # None: Null
    values: tuple[object, ...]
    set_op: str = ""  # "", "foranyvalue", "forallvalues"
    if_exists: bool = False

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        """The clause's truth for a request context (keys lower-cased)."""
        present = context.get(self.key) or ()
        if self.operator is None:  # Null: "true" = absent, "false" = present
            return any((v == "true") == (not present) for v in self.values)
        if not present:
            if self.if_exists or self.set_op == "forallvalues":
                return True
            if self.set_op == "foranyvalue":
                return False
            return self.operator.negated
        results = [self._one(v) for v in present]
        if self.set_op == "forallvalues":
            return all(results)
        if self.set_op == "foranyvalue":
            return any(results)
        return all(results) if self.operator.negated else any(results)

    def _one(self, value: str) -> bool:
        op = self.operator
        assert op is not None
        hit = any(op.match(p, value) for p in self.values)
        return not hit if op.negated else hit


@dataclass(frozen=True)
class Condition:
    """A statement's whole ``Condition`` block: every clause must hold."""

    clauses: tuple[Clause, ...] = ()

    def holds(self, context: Mapping[str, tuple[str, ...]]) -> bool:
        """True when every clause holds; raises ``UnsupportedConditionKey`` first if any clause
        is on a key the local cloud does not fill (see ``keys``)."""
        for clause in self.clauses:
            if not is_known(clause.key):
                raise UnsupportedConditionKey(
                    f"condition {clause.text} on {clause.key!r}: the local cloud does not fill this key, "
                    "so it cannot evaluate the statement as AWS would"
                )
        return all(c.holds(context) for c in self.clauses)


def parse_condition(block: object) -> Condition:
    """The ``Condition`` element of a statement; ``PolicyError`` for what IAM would refuse."""
    if block is None:
        return Condition()
    if not isinstance(block, Mapping):
        raise PolicyError(f"Condition must be an object, not {type(block).__name__}")
    clauses: list[Clause] = []
    for text, keys in block.items():
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"condition operator {text!r} must map condition keys to values")
        for key, raw in keys.items():
            clauses.append(_clause(str(text), str(key), raw))
    return Condition(tuple(clauses))


def _clause(text: str, key: str, raw: object) -> Clause:
    name = text
    set_op = ""
    if ":" in name:
        prefix, _, name = name.partition(":")
        set_op = prefix.lower()
        if set_op not in ("foranyvalue", "forallvalues"):
            raise PolicyError(f"unknown condition set operator {prefix!r} in {text!r}")
    if_exists = name.lower().endswith("ifexists")
    base = name[: -len("IfExists")] if if_exists else name
    values = raw if isinstance(raw, list) else [raw]
    if not values or any(isinstance(v, dict | list) or v is None for v in values):
        raise PolicyError(f"condition {text} on {key!r}: values must be strings, numbers or booleans")
    texts = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
    if base.lower() == "null":
        if if_exists or set_op:
            raise PolicyError(f"{text!r}: Null takes no IfExists or set operator")
        return Clause(text, key.lower(), None, tuple(_bool_or_error(text, t) for t in texts))
    operator = OPERATORS.get(base.lower())
    if operator is None:
        raise PolicyError(f"unknown condition operator {text!r}")
    try:
        parsed = tuple(operator.parse(t) for t in texts)
    except ValueError as exc:
        raise PolicyError(f"condition {text} on {key!r}: {exc}") from exc
    return Clause(text, key.lower(), operator, parsed, set_op, if_exists)


def _bool_or_error(text: str, value: str) -> str:
    try:
        return _bool(value)
    except ValueError as exc:
        raise PolicyError(f"{text}: {exc}") from exc
