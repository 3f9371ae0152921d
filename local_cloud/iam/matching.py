"""Wildcard matching of actions, ARNs and string values, the way IAM matches them.

moto builds regexes from policy text without escaping (a ``.`` in a bucket name matches any
character) and matches actions case-sensitively; IAM does neither. Here every pattern is turned
into an escaped, anchored regex once and cached:

- actions: ``*`` and ``?`` globs, case-insensitive (``S3:getobject`` is ``s3:GetObject``);
- ARNs: segment by segment (``partition:service:region:account:resource``): a wildcard in one of
  the first five segments never crosses a ``:``, the resource part may hold ``:`` and ``/`` and
  its wildcards span them. Case-sensitive. A request resource of ``*`` (an action without
  resource-level permissions) is matched only by a ``*`` pattern;
- ``StringLike`` values: globs, case-sensitive.

Policy variables are refused (``PolicyError``) except the three escapes IAM defines for literal
characters: ``${*}``, ``${?}``, ``${$}``.
"""

from __future__ import annotations

import re
from functools import lru_cache

from local_cloud.iam.exceptions import PolicyError

_ESCAPES = {"${*}": "*", "${?}": "?", "${$}": "$"}
_TOKEN = re.compile(r"\$\{[^}]*\}|[*?]")


def _glob_body(pattern: str, star: str, one: str) -> str:
    """Regex source for a glob: ``*`` → ``star``, ``?`` → ``one``, everything else literal."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        token = m.group()
        if token == "*":
            out.append(star)
        elif token == "?":
            out.append(one)
        elif token in _ESCAPES:
            out.append(re.escape(_ESCAPES[token]))
        else:
            raise PolicyError(
                f"policy variable {token} in {pattern!r}: the local cloud does not substitute policy "
                "variables (only the escapes ${*}, ${?}, ${$} are understood)"
            )
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return "".join(out)


@lru_cache(maxsize=4096)
def glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """Anchored regex of an IAM glob (``*`` any run of characters, ``?`` one character)."""
    return re.compile(_glob_body(pattern, ".*", "."), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def check_pattern(pattern: str) -> None:
    """Raise ``PolicyError`` now, at parse time, for a pattern the matcher would refuse later."""
    _glob_body(pattern, "", "")


def action_matches(pattern: str, action: str) -> bool:
    """``pattern`` (``s3:Get*``, ``*``) covers ``action`` (``s3:GetObject``); case-insensitive."""
    return glob(pattern, True).fullmatch(action) is not None


def is_arn_pattern(pattern: str) -> bool:
    """``arn:partition:service:region:account:resource``: six parts (IAM refuses fewer)."""
    return pattern.startswith("arn:") and len(pattern.split(":", 5)) == 6


@lru_cache(maxsize=4096)
def _arn_regex(pattern: str) -> re.Pattern[str] | None:
    parts = pattern.split(":", 5)
    if len(parts) < 6:
        return None  # not an ARN: matches nothing (a policy holding it is refused at parse)
    # Segment-bounded wildcards for partition..account; the resource part is free.
    head = ":".join(_glob_body(p, "[^:]*", "[^:]") for p in parts[:5])
    return re.compile(head + ":" + _glob_body(parts[5], ".*", "."), re.DOTALL)


def arn_matches(pattern: str, arn: str) -> bool:
    """``pattern`` (a policy's Resource entry) covers the request's resource ``arn``."""
    if pattern == "*":
        return True
    regex = _arn_regex(pattern)
    if arn == "*" or regex is None:
        return False
    return regex.fullmatch(arn) is not None


def string_like(pattern: str, value: str) -> bool:
    """``StringLike``: glob, case-sensitive."""
    return glob(pattern).fullmatch(value) is not None
