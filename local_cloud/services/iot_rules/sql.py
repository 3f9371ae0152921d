"""The subset of the AWS IoT SQL (version 2016-03-23) the local rules engine runs.

A rule's SQL is parsed once, when CreateTopicRule/ReplaceTopicRule arrive, so SQL the local engine
cannot run is refused there with AWS's ``SqlParseException`` instead of failing silently on
every message. Supported (keywords case-insensitive, field names case-sensitive):

- ``SELECT *``, ``SELECT expr [AS name], ...`` and ``SELECT *, expr AS name``; an unaliased field
  ``a.b.c`` is named ``c``, an unaliased function call by the function's name; any other
  unaliased expression is refused (give it an ``AS``);
- ``FROM 'topic/filter'`` (an MQTT filter: ``+`` and ``#`` as whole levels, ``#`` last);
- ``WHERE`` with ``AND``, ``OR``, ``NOT``, ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``+``,
  ``-``, ``*``, ``/``, ``%`` and parentheses;
- operands: JSON fields ``a``, ``a.b.c``; numbers; ``'strings'`` (``''`` escapes a quote);
  ``true``, ``false``, ``null``; ``topic()``, ``topic(n)`` (1-based level), ``clientid()``,
  ``timestamp()`` (milliseconds since the epoch).

As in AWS IoT a missing field is *Undefined*: a SELECT omits it, a comparison or arithmetic on it
(or on operands of different types) is Undefined, ``AND``/``OR`` follow three-valued logic, and a
message passes ``WHERE`` only when the condition is ``true``. Not supported (refused at create):
``CASE``, ``IN``, array indexes ``a[0]``, nested SELECT, every other function.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_cloud.services.iot_rules.exceptions import SqlParseException


class _Undefined:
    """AWS IoT's Undefined: what a missing field evaluates to (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED: Any = _Undefined()

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.\d*|\.\d+|\d+)(?![A-Za-z_])|(?P<string>'(?:[^']|'')*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|<=|>=|!=|[=<>+\-*/%(),.\[\]]))"
)
_KEYWORDS = {"select", "from", "where", "as", "and", "or", "not", "true", "false", "null"}
_UNSUPPORTED_KEYWORDS = {"case", "in", "like", "between", "is"}
_FUNCTIONS = {"topic": (0, 1), "clientid": (0, 0), "timestamp": (0, 0)}
_COMPARE = {"=", "<>", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class Message:
    """What a rule sees of one MQTT message."""

    topic: str
    payload: Any  # the parsed JSON document
    client_id: str | None = None  # unknown locally (mosquitto does not tell subscribers)
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))


Expr = Callable[[Message], Any]


@dataclass(frozen=True)
class Statement:
    """A parsed rule query: ``select(message)`` is the action's payload, ``where`` its filter."""

    sql: str
    star: bool
    columns: tuple[tuple[str, Expr], ...]
    topic_filter: str
    where: Expr | None

    def matches(self, message: Message) -> bool:
        return self.where is None or self.where(message) is True

    def select(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = dict(message.payload) if self.star and isinstance(message.payload, dict) else {}
        for name, expr in self.columns:
            value = expr(message)
            if value is not UNDEFINED:
                out[name] = value
        return out


def _tokens(sql: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = sql.rstrip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SqlParseException(
                f"Unexpected character at position {pos + 1}: {text[pos:].strip()[:20]!r}"
            )
        kind = str(match.lastgroup)
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def check_topic_filter(topic_filter: str) -> None:
    """An MQTT topic filter as IoT accepts it in FROM."""
    if not topic_filter:
        raise SqlParseException("FROM needs a topic filter, e.g. FROM 'edge/+/monitoring'")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if ("+" in level and level != "+") or ("#" in level and level != "#"):
            raise SqlParseException(f"Invalid topic filter {topic_filter!r}: + and # must be a whole level")
        if level == "#" and index != len(levels) - 1:
            raise SqlParseException(f"Invalid topic filter {topic_filter!r}: # must be the last level")


def _field(path: tuple[str, ...]) -> Expr:
    def get(message: Message) -> Any:
        value: Any = message.payload
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return UNDEFINED
            value = value[key]
        return value

    return get


def _topic_level(level: int | None) -> Expr:
    def topic(message: Message) -> Any:
        if level is None:
            return message.topic
        levels = message.topic.split("/")
        return levels[level - 1] if 1 <= level <= len(levels) else UNDEFINED

    return topic


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(op: str, left: Expr, right: Expr) -> Expr:
    def compare(message: Message) -> Any:
        a, b = left(message), right(message)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        same_kind = (_is_number(a) and _is_number(b)) or type(a) is type(b)
        if not same_kind:
            return UNDEFINED
        if op in ("=", "<>"):
            return (a == b) == (op == "=")
        if not (_is_number(a) or isinstance(a, str)):
            return UNDEFINED  # ordering is defined on numbers and strings only
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    return compare


def _arithmetic(op: str, left: Expr, right: Expr) -> Expr:
    def compute(message: Message) -> Any:
        a, b = left(message), right(message)
        if not (_is_number(a) and _is_number(b)):
            return UNDEFINED
        if op in "/%" and b == 0:
            return UNDEFINED
        if op == "/":
            return a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b
        if op == "%":
            return a % b
        return a + b if op == "+" else a - b if op == "-" else a * b

    return compute


def _logic(op: str, left: Expr, right: Expr) -> Expr:
    """Three-valued AND/OR: a decided side wins, otherwise Undefined."""

    def combine(message: Message) -> Any:
        a, b = left(message), right(message)
        if op == "and":
            if a is False or b is False:
                return False
            return True if a is True and b is True else UNDEFINED
        if a is True or b is True:
            return True
        return False if a is False and b is False else UNDEFINED

    return combine


def _negate(operand: Expr) -> Expr:
    def negate(message: Message) -> Any:
        value = operand(message)
        return (not value) if isinstance(value, bool) else UNDEFINED

    return negate


def _constant(value: Any) -> Expr:
    return lambda message: value


class _Parser:
    """Recursive descent over the token list; every refusal is a ``SqlParseException``."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = _tokens(sql)
        self.pos = 0

    # -- tokens --------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def keyword(self, word: str) -> bool:
        kind, text = self.peek()
        if kind == "name" and text.lower() == word:
            self.pos += 1
            return True
        return False

    def op(self, symbol: str) -> bool:
        if self.peek() == ("op", symbol):
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise SqlParseException(f"Expected {word.upper()} but found {self.peek()[1] or 'the end'!r}")

    # -- statement -----------------------------------------------------------------------------
    def statement(self) -> Statement:
        self.expect_keyword("select")
        star, columns = self.select_list()
        self.expect_keyword("from")
        kind, text = self.peek()
        if kind != "string":
            raise SqlParseException("FROM needs a quoted topic filter, e.g. FROM 'edge/+/monitoring'")
        self.pos += 1
        topic_filter = text[1:-1].replace("''", "'")
        check_topic_filter(topic_filter)
        where = self.expression() if self.keyword("where") else None
        if self.peek()[0] != "end":
            raise SqlParseException(f"Unexpected {self.peek()[1]!r} after the statement")
        return Statement(self.sql, star, tuple(columns), topic_filter, where)

    def select_list(self) -> tuple[bool, list[tuple[str, Expr]]]:
        star, columns = False, []
        while True:
            if self.op("*"):
                if star:
                    raise SqlParseException("SELECT lists * twice")
                star = True
            else:
                start = self.pos
                expr = self.expression()
                name = self.alias(start)
                columns.append((name, expr))
            if not self.op(","):
                return star, columns

    def alias(self, start: int) -> str:
        if self.keyword("as"):
            kind, text = self.peek()
            if kind != "name" or text.lower() in _KEYWORDS:
                raise SqlParseException(f"AS needs a name, found {text or 'the end'!r}")
            self.pos += 1
            return text
        used = self.tokens[start : self.pos]
        if used and all(k == "name" or t == "." for k, t in used) and used[-1][0] == "name":
            return used[-1][1]  # a field: its last segment
        if len(used) >= 3 and used[0][0] == "name" and used[1] == ("op", "("):
            return used[0][1].lower()  # a function call: its name
        raise SqlParseException(
            f"Give the expression {' '.join(t for _, t in used)!r} a name with AS (local rules engine)"
        )

    # -- expressions, lowest precedence first ---------------------------------------------------
    def expression(self) -> Expr:
        left = self.conjunction()
        while self.keyword("or"):
            left = _logic("or", left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.keyword("and"):
            left = _logic("and", left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.keyword("not"):
            return _negate(self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.sum()
        kind, text = self.peek()
        if kind == "op" and text == "!=":
            raise SqlParseException("'!=' is not supported by the local rules engine; use <>")
        if kind == "op" and text in _COMPARE:
            self.pos += 1
            return _compare(text, left, self.sum())
        return left

    def sum(self) -> Expr:
        left = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            op = self.peek()[1]
            self.pos += 1
            left = _arithmetic(op, left, self.product())
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.peek()[1]
            self.pos += 1
            left = _arithmetic(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.op("-"):
            return _arithmetic("-", _constant(0), self.unary())
        return self.operand()

    def operand(self) -> Expr:
        kind, text = self.peek()
        self.pos += 1
        if kind == "number":
            return _constant(float(text) if "." in text else int(text))
        if kind == "string":
            return _constant(text[1:-1].replace("''", "'"))
        if kind == "op" and text == "(":
            inner = self.expression()
            if not self.op(")"):
                raise SqlParseException("Missing ) in the expression")
            return inner
        if kind == "name":
            return self.named(text)
        raise SqlParseException(f"Expected a value but found {text or 'the end'!r}")

    def named(self, text: str) -> Expr:
        lower = text.lower()
        if lower in ("true", "false"):
            return _constant(lower == "true")
        if lower == "null":
            return _constant(None)
        if lower in _UNSUPPORTED_KEYWORDS:
            raise SqlParseException(f"{text.upper()} is not supported by the local rules engine")
        if lower in _KEYWORDS:
            raise SqlParseException(f"Expected a value but found {text.upper()!r}")
        if self.op("("):
            return self.call(lower)
        path = [text]
        while self.op("."):
            kind, part = self.peek()
            if kind != "name":
                raise SqlParseException(f"Expected a field name after '.', found {part or 'the end'!r}")
            self.pos += 1
            path.append(part)
        if self.peek() == ("op", "["):
            raise SqlParseException("Array indexes are not supported by the local rules engine")
        return _field(tuple(path))

    def call(self, name: str) -> Expr:
        if name not in _FUNCTIONS:
            raise SqlParseException(f"Function {name}() is not supported by the local rules engine")
        args: list[tuple[str, str]] = []
        while not self.op(")"):
            if args and not self.op(","):
                raise SqlParseException(f"Expected , or ) in the arguments of {name}()")
            args.append(self.peek())
            self.pos += 1
            if args[-1][0] == "end":
                raise SqlParseException(f"Missing ) after the arguments of {name}()")
        low, high = _FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise SqlParseException(f"{name}() takes {high} argument(s) at most, got {len(args)}")
        if name == "topic":
            if args and (args[0][0] != "number" or "." in args[0][1] or int(args[0][1]) < 1):
                raise SqlParseException("topic(n) takes a positive integer level")
            return _topic_level(int(args[0][1]) if args else None)
        if name == "clientid":
            return lambda message: message.client_id if message.client_id is not None else UNDEFINED
        return lambda message: message.timestamp_ms


def parse(sql: str) -> Statement:
    """Parse a rule's SQL; ``SqlParseException`` names what is wrong or not supported."""
    if not isinstance(sql, str) or not sql.strip():
        raise SqlParseException("The rule's sql must be a non-empty string")
    return _Parser(sql).statement()
